"""Bus backends chosen by URL scheme: ``memory://`` and ``kafka://host:port`` (see ``registry.py``).

``QAFLOW_TOPIC_PREFIX`` namespaces every topic on the broker (see ``prefixed.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qaflow.bus.base import Bus
    from qaflow.core.settings import BackendSettings


def open_bus(url: str, settings: BackendSettings | None = None) -> Bus:
    from qaflow.bus.registry import FAMILY

    bus: Bus = FAMILY.load(url)(url, settings)
    if settings is not None and settings.topic_prefix:
        from qaflow.bus.prefixed import PrefixedBus

        return PrefixedBus(bus, settings.topic_prefix)
    return bus
