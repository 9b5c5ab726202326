"""The api service: submit questions, read results and statistics (Flask under gunicorn).

The pieces it shares with the scorer and the dashboard live in :mod:`qaflow.services.web`.
"""
