"""Bus backends chosen by URL scheme: ``memory://`` and ``kafka://host:port``.

``QAFLOW_TOPIC_PREFIX`` namespaces every topic on the broker (see ``prefixed.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qaflow.core.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from qaflow.bus.base import Bus
    from qaflow.core.settings import BackendSettings


def open_bus(url: str, settings: BackendSettings | None = None) -> Bus:
    scheme = url.split("://", 1)[0]
    bus: Bus
    if scheme == "memory":
        from qaflow.bus.memory import MemoryBus

        bus = MemoryBus(url, partitions=settings.kafka_partitions if settings else 3)
    elif scheme == "kafka":
        try:
            from qaflow.bus.kafka import KafkaBus
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingExtraError("kafka-python", "kafka") from exc
        bus = KafkaBus(url, settings)
    else:
        msg = f"QAFLOW_BUS_URL: unsupported scheme {scheme!r} (use memory:// or kafka://host:port)"
        raise ConfigError(msg)
    if settings is not None and settings.topic_prefix:
        from qaflow.bus.prefixed import PrefixedBus

        return PrefixedBus(bus, settings.topic_prefix)
    return bus
