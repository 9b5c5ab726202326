"""Store backends chosen by URL scheme (see ``registry.py``): ``sqlite:///path`` and ``postgresql://...``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qaflow.store.base import Store


def open_store(url: str) -> Store:
    from qaflow.store.registry import FAMILY

    store: Store = FAMILY.load(url)(url)
    return store
