"""score-worker: the in-process score stage as its own process.

Used by local runs and the end-to-end test; in the cluster the PyFlink job does this job
with its state checkpointed. ``python -m qaflow.services.score_worker``; see docs/services.md.
"""
