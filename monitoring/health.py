"""Health checks: each probe of a dependency says ok or what is wrong, and how long it took."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.status import Stat

# A cluster writes its stats every guard cycle (0.5 s); older than this and it is gone.
WORKER_STALE_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    duration_ms: float

    def as_dict(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "fail", "detail": self.detail, "duration_ms": self.duration_ms}


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_cache() -> str:
    key, value = f"health:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, 10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was written")
    cache.delete(key)
    return "read and write ok"


def check_queue() -> str:
    broker = get_broker()
    if not broker.ping():
        raise RuntimeError(f"broker {broker.info()} does not answer")
    return f"{broker.info()}, {broker.queue_size()} waiting"


def check_workers() -> str:
    clusters = [s for s in Stat.get_all() if timezone.now() - s.timestamp < WORKER_STALE_AFTER]
    if not clusters:
        raise RuntimeError("no worker cluster has reported in the last 30 seconds")
    workers = sum(len(s.workers) for s in clusters)
    return f"{len(clusters)} cluster(s), {workers} worker process(es)"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "cache": check_cache,
    "queue": check_queue,
    "workers": check_workers,
}


def run_checks(names: list[str] | None = None) -> dict[str, CheckResult]:
    results = {}
    for name in names or list(CHECKS):
        started = time.perf_counter()
        try:
            detail, ok = CHECKS[name](), True
        except Exception as exc:  # a health check reports failures, it never raises them
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results[name] = CheckResult(ok=ok, detail=detail, duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return results
