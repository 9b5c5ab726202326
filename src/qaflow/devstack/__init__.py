"""Real Kafka (KRaft), PostgreSQL and Redis as local processes, for tests and development.

Install what they need with ``bash k8s-dev/local/install-deps.sh``. Tests get them from the
session fixtures in ``tests/conftest.py``; a developer runs ``python -m qaflow.devstack up``.
"""

from qaflow.devstack.errors import DevStackError, MissingBinaryError, ServerStartError
from qaflow.devstack.kafka import KafkaServer
from qaflow.devstack.postgres import PostgresServer
from qaflow.devstack.redis import RedisServer
from qaflow.devstack.stack import DevStack, down, status, up

__all__ = [
    "DevStack",
    "DevStackError",
    "KafkaServer",
    "MissingBinaryError",
    "PostgresServer",
    "RedisServer",
    "ServerStartError",
    "down",
    "status",
    "up",
]
