"""The dashboard: one live page of throughput, latency, scores, attempts, cache and the loop.

Read-only: it reads the store (and, when configured, the api's /v1/stats for the cache
hit rate). Server-rendered HTML plus a small inline script that polls ``api/summary``;
no external assets, so it works on clusters without internet access.
"""
