"""Cache backends chosen by URL scheme (see ``registry.py``): ``memory://``, ``none://`` and ``redis://``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qaflow.cache.base import Cache


def open_cache(url: str) -> Cache:
    from qaflow.cache.registry import FAMILY

    cache: Cache = FAMILY.load(url)(url)
    return cache
