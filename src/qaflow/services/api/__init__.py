"""The api service: submit questions, read results and statistics (Flask under gunicorn).

``web``, ``prom`` and ``gunicorn_hooks`` hold what the scorer and the dashboard share with it.
"""
