"""storage-writer: results, attempt history and dead letters into the store; the cache filled.

``python -m qaflow.services.storage_writer``; see docs/services.md.
"""
