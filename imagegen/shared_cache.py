"""Figures that many readers ask for at once, computed once per few seconds and shared by every process.

The dashboard polls every 30 s per open tab, Prometheus scrapes /metrics every 15–60 s per server
and every batch page asks for the providers' recent speed; these change by the minute. Keeping the
computed value for a few seconds in the shared cache (Redis when configured) makes concurrent
readers cost one computation, not one each. A cache that is down only means computing every time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache

logger = logging.getLogger(__name__)
T = TypeVar("T")


def shared_figures(key: str, seconds: float, compute: Callable[[], T]) -> T:
    """`compute()`'s result, reused under `key` for `seconds` by every process (0 = always compute)."""
    if seconds <= 0:
        return compute()
    try:
        found = cache.get(key)
    except Exception as exc:  # the cache (Redis) down must not take the figures with it
        logger.debug("figures cache unavailable: %s", exc)
        return compute()
    if found is not None:
        return found
    value = compute()
    try:
        cache.set(key, value, seconds)
    except Exception as exc:
        logger.debug("figures cache unavailable: %s", exc)
    return value
