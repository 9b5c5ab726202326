"""retry-worker: holds failed LLM calls until their delay passes, then re-publishes them.

``python -m qaflow.services.retry_worker``; see docs/services.md.
"""
