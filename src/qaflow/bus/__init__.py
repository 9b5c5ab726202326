"""Bus backends chosen by URL scheme: ``memory://`` and ``kafka://host:port``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qaflow.core.errors import ConfigError

if TYPE_CHECKING:
    from qaflow.bus.base import Bus
    from qaflow.core.settings import BackendSettings


def open_bus(url: str, settings: BackendSettings | None = None) -> Bus:
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        from qaflow.bus.memory import MemoryBus

        return MemoryBus(url, partitions=settings.kafka_partitions if settings else 3)
    if scheme == "kafka":
        try:
            from qaflow.bus.kafka import KafkaBus
        except ImportError as exc:  # pragma: no cover - depends on the install
            from qaflow.core.errors import MissingExtraError

            msg = "kafka-python"
            raise MissingExtraError(msg, "kafka") from exc
        return KafkaBus(url, settings)
    msg = f"QAFLOW_BUS_URL: unsupported scheme {scheme!r} (use memory:// or kafka://host:port)"
    raise ConfigError(msg)
