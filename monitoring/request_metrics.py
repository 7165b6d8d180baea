"""Request timing: aggregate in process memory, then add each minute's totals to the database.

A request only updates a few numbers under a lock. Once a minute has passed, its aggregates
(count, errors, a fixed-bucket latency histogram) are added to `RequestStats` with one
increment per route and method, so any number of web processes merge into the same rows.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import F
from django.db.models.functions import Greatest

from monitoring.models import BUCKET_FIELDS, LATENCY_BUCKETS_MS, RequestStats

logger = logging.getLogger(__name__)

# Positions in an aggregate list; the histogram buckets follow.
COUNT, CLIENT_ERRORS, SERVER_ERRORS, DURATION_SUM, DURATION_MAX, RATE_LIMITED = range(6)
HEAD = 6
Key = tuple[int, str, str]  # (minute since the epoch, route, method)


class RequestRecorder:
    """Per-process accumulator; `record` is the only part on the request path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Key, list[float]] = {}
        self._flushing = threading.Lock()

    def record(self, *, route: str, method: str, status: int, duration_ms: float) -> None:
        minute = int(time.time() // 60)
        bucket = HEAD + bisect.bisect_left(LATENCY_BUCKETS_MS, duration_ms)
        with self._lock:
            aggregate = self._pending.get((minute, route, method))
            if aggregate is None:
                aggregate = self._pending[(minute, route, method)] = [0.0] * (HEAD + len(LATENCY_BUCKETS_MS))
            aggregate[COUNT] += 1
            aggregate[CLIENT_ERRORS] += 400 <= status < 500
            aggregate[SERVER_ERRORS] += status >= 500
            aggregate[RATE_LIMITED] += status == 429
            aggregate[DURATION_SUM] += duration_ms
            aggregate[DURATION_MAX] = max(aggregate[DURATION_MAX], duration_ms)
            aggregate[bucket] += 1
        if self._has_finished_minutes(minute):
            self._flush_soon()

    def _has_finished_minutes(self, current_minute: int) -> bool:
        return any(key[0] < current_minute for key in self._pending)

    def _flush_soon(self) -> None:
        if settings.Q_CLUSTER.get("sync"):
            self.flush()  # tests and debugging: everything inline, inside the caller's transaction
        elif not self._flushing.locked():
            threading.Thread(target=self._flush_in_thread, name="request-metrics-flush", daemon=True).start()

    def _flush_in_thread(self) -> None:
        from monitoring.alerts import alerts_evaluate_if_overdue

        try:
            self.flush()
            alerts_evaluate_if_overdue()
        except Exception:  # metrics must never take the web process down
            logger.exception("Could not store request metrics")
        finally:
            close_old_connections()

    def take(self, *, include_current: bool) -> dict[Key, list[float]]:
        """Remove and return the finished minutes (and the current one when asked)."""
        current = int(time.time() // 60)
        with self._lock:
            keys = [key for key in self._pending if include_current or key[0] < current]
            return {key: self._pending.pop(key) for key in keys}

    def flush(self, *, include_current: bool = False) -> int:
        """Add what was recorded to the database; returns how many route-minutes were written."""
        with self._flushing:
            taken = self.take(include_current=include_current)
            if taken:
                request_stats_add(aggregates=taken)
            return len(taken)


def request_stats_add(*, aggregates: dict[Key, list[float]]) -> None:
    """Add per-minute aggregates to their minute rows and to the all-time total rows, in one transaction."""
    with transaction.atomic():
        for (minute, route, method), values in aggregates.items():
            started = datetime.fromtimestamp(minute * 60, tz=UTC)
            _increment(minute=started, route=route[:200], method=method[:10], values=values)
            _increment(minute=None, route=route[:200], method=method[:10], values=values)


def _increment(*, minute: datetime | None, route: str, method: str, values: list[float]) -> None:
    lookup = {"route": route, "method": method, "minute__isnull": True} if minute is None else {
        "route": route, "method": method, "minute": minute
    }  # fmt: skip
    updates: dict[str, object] = {
        "count": F("count") + int(values[COUNT]),
        "client_errors": F("client_errors") + int(values[CLIENT_ERRORS]),
        "server_errors": F("server_errors") + int(values[SERVER_ERRORS]),
        "rate_limited": F("rate_limited") + int(values[RATE_LIMITED]),
        "duration_ms_sum": F("duration_ms_sum") + values[DURATION_SUM],
        "duration_ms_max": Greatest(F("duration_ms_max"), values[DURATION_MAX]),
    }
    updates.update({name: F(name) + int(values[HEAD + i]) for i, name in enumerate(BUCKET_FIELDS)})
    if RequestStats.objects.filter(**lookup).update(**updates):
        return
    fields = {name: int(values[HEAD + i]) for i, name in enumerate(BUCKET_FIELDS)}
    try:
        with transaction.atomic():
            RequestStats.objects.create(
                minute=minute, route=route, method=method, count=int(values[COUNT]),
                client_errors=int(values[CLIENT_ERRORS]), server_errors=int(values[SERVER_ERRORS]),
                rate_limited=int(values[RATE_LIMITED]),
                duration_ms_sum=values[DURATION_SUM], duration_ms_max=values[DURATION_MAX], **fields,
            )  # fmt: skip
    except IntegrityError:  # another process created the row first: add to it instead
        RequestStats.objects.filter(**lookup).update(**updates)


def percentile_ms(buckets: list[int], fraction: float) -> float | None:
    """Estimate a percentile from histogram counts, interpolating inside the bucket that holds it."""
    total = sum(buckets)
    if not total:
        return None
    rank, seen = fraction * total, 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            lower = LATENCY_BUCKETS_MS[index - 1] if index else 0.0
            upper = LATENCY_BUCKETS_MS[index]
            if upper == float("inf"):
                return lower
            return round(lower + (upper - lower) * (rank - seen) / count, 1)
        seen += count
    return LATENCY_BUCKETS_MS[-2]


recorder = RequestRecorder()
