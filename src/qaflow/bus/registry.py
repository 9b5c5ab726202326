"""The bus backends, by URL scheme (pure data, see :mod:`qaflow.core.plugins`); the first is the default."""

from __future__ import annotations

from qaflow.core.plugins import Family, Plugin

FAMILY = Family("bus_url", (
    Plugin("memory", "qaflow.bus.memory:MemoryBus", "memory://"),
    Plugin("kafka", "qaflow.bus.kafka:KafkaBus", "kafka://host:port[,host:port]",
           extra="kafka", dependency="kafka-python"),
), by_scheme=True)
