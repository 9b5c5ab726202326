"""The pure core: ids, message schemas, routing and retry policies, settings.

Nothing in this package imports a transport (Kafka, Flask, PyFlink, psycopg2, redis).
"""
