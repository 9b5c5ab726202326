"""llm-worker: answers ``qa.questions`` with N LLM calls in flight, adaptively rate limited.

``python -m qaflow.services.llm_worker``; see docs/services.md.
"""
