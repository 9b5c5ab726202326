"""Service entry points: each a thin shell over the pipeline stages and the backends.

Run locally exactly as in the containers: ``python -m qaflow.services.<worker>`` or
``gunicorn "qaflow.services.<app>.app:create_app()"``, configured by QAFLOW_* variables.
"""
