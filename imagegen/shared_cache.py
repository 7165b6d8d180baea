"""Figures that many readers ask for at once, computed once per few seconds and shared by every process.

The dashboard polls every 30 s per open tab, Prometheus scrapes /metrics every 15–60 s per server
and every batch page asks for the providers' recent speed; these change by the minute. Keeping the
computed value for a few seconds in the shared cache (Redis when configured) makes concurrent
readers cost one computation, not one each. A cache that is down only means computing every time.

When the value's seconds are over, the first reader to claim the refresh computes it again while
the others keep getting the value they had: readers never all compute at once (a stampede that
turned every expiry into 20 computations under 20 viewers). A value stays usable, stale, for
STALE_FACTOR times its seconds; after that, or before the first computation, readers compute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache

logger = logging.getLogger(__name__)
T = TypeVar("T")

STALE_FACTOR = 10
# A refresh that takes longer than this (or a process that died computing) lets another reader try.
REFRESH_CLAIM_SECONDS = 30


def cache_get(key: str) -> Any:
    """What the shared cache holds under `key`; None when it holds nothing or is down."""
    try:
        return cache.get(key)
    except Exception as exc:  # the cache (Redis) down must not take what it speeds up with it
        logger.debug("shared cache unavailable: %s", exc)
        return None


def cache_set(key: str, value: Any, seconds: float) -> bool:
    """Keep `value` under `key` for `seconds`; False (and nothing kept) when the cache is down."""
    try:
        cache.set(key, value, timeout=seconds)
    except Exception as exc:
        logger.debug("shared cache unavailable: %s", exc)
        return False
    return True


def shared_figures(key: str, seconds: float, compute: Callable[[], T]) -> T:
    """`compute()`'s result, reused under `key` for `seconds` by every process (0 = always compute)."""
    if seconds <= 0:
        return compute()
    found = cache_get(key)
    if _fresh_or_being_refreshed(key, found):
        return found[0]
    value = compute()
    if cache_set(key, (value, time.time() + seconds), max(1, round(seconds * STALE_FACTOR))):
        try:
            cache.delete(_claim(key))
        except Exception as exc:
            logger.debug("shared cache unavailable: %s", exc)
    return value


def _fresh_or_being_refreshed(key: str, found: Any) -> bool:
    """Whether the stored (value, fresh until) can be served: still fresh, or another reader refreshes it."""
    if not (isinstance(found, tuple) and len(found) == 2):
        return False
    if found[1] > time.time():
        return True
    try:
        return not cache.add(_claim(key), 1, timeout=REFRESH_CLAIM_SECONDS)  # not ours to refresh: serve it
    except Exception as exc:
        logger.debug("shared cache unavailable: %s", exc)
        return False


def _claim(key: str) -> str:
    return f"{key}:refreshing"
