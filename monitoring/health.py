"""Health checks: each probe of a dependency says ok or what is wrong, and how long it took."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django_q.brokers import get_broker

from monitoring import resources

STARTED_AT = time.time()


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    duration_ms: float

    def as_dict(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "fail", "detail": self.detail, "duration_ms": self.duration_ms}


def check_process() -> str:
    return f"up {round(time.time() - STARTED_AT)} s"


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


def check_storage() -> str:
    name = default_storage.save(f"health/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name, "rb") as stored:
            if stored.read() != b"ok":
                raise RuntimeError("a file written to storage reads back different")
    finally:
        default_storage.delete(name)
    return f"{storage_location()}: write, read back and delete ok"


def storage_location() -> str:
    """Where files go: the bucket (and its endpoint) or the media directory."""
    if settings.AWS_STORAGE_BUCKET_NAME:
        endpoint = settings.AWS_S3_ENDPOINT_URL or "AWS"
        return f"s3://{settings.AWS_STORAGE_BUCKET_NAME} at {endpoint}"
    return f"directory {settings.MEDIA_ROOT}"


def check_disk() -> str:
    usage = resources.disk_usage()
    free_percent = 100 * usage.free / usage.total if usage.total else 0.0
    if free_percent < settings.ALERT_DISK_FREE_PERCENT:
        raise RuntimeError(
            f"only {free_percent:.1f}% free under {settings.DATA_DIR} (limit {settings.ALERT_DISK_FREE_PERCENT}%)"
        )
    return f"{free_percent:.1f}% free ({usage.free // 2**20} MiB)"


def check_workers() -> str:
    clusters = resources.live_clusters()
    if not clusters:
        raise RuntimeError("no worker cluster has reported in the last 30 seconds")
    workers = sum(len(s.workers) for s in clusters)
    return f"{len(clusters)} cluster(s), {workers} worker process(es)"


LIVENESS: dict[str, Callable[[], str]] = {"process": check_process}
# What `/health` reports: the four dependencies a request or a batch needs right now.
CORE = ("database", "cache", "queue", "workers")
READINESS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "cache": check_cache,
    "queue": check_queue,
    "storage": check_storage,
    "disk": check_disk,
    "workers": check_workers,
}
CHECKS = {**LIVENESS, **READINESS}


def run_checks(names: list[str] | None = None) -> dict[str, CheckResult]:
    results = {}
    for name in names or list(READINESS):
        started = time.perf_counter()
        try:
            detail, ok = CHECKS[name](), True
        except Exception as exc:  # a health check reports failures, it never raises them
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results[name] = CheckResult(ok=ok, detail=detail, duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return results
