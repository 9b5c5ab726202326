"""Shared by the web services (api, scorer, dashboard): errors, probes, JSON bodies, metrics, gunicorn hooks."""
