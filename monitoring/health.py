"""Health checks: each probe of a dependency says ok or what is wrong, and how long it took.

Besides the dependencies, readiness watches the engine itself (docs/operations.md, "Health checks"):
`progress` fails when work waits, workers are alive and nothing moves; `results` fails when a worker
node's django-q monitor is dead or its finished tasks are not being saved.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone
from django_q.brokers import get_broker

from generation import health_stats
from monitoring import resources
from monitoring.models import HealthProbe

STARTED_AT = time.time()


class CheckFailed(Exception):
    """A check found something wrong and says what, in words meant for the reader of `detail`."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    duration_ms: float

    def as_dict(self) -> dict[str, object]:
        return {"status": "ok" if self.ok else "fail", "detail": self.detail, "duration_ms": self.duration_ms}


def check_process() -> str:
    return f"up {round(time.time() - STARTED_AT)} s"


@dataclass(frozen=True)
class Verdict:
    """What a check that is also an alert rule found: healthy or not, and why, in one sentence."""

    ok: bool
    detail: str


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    verdict = database_write_verdict()
    if not verdict.ok:
        raise CheckFailed(verdict.detail)
    return f"{connection.vendor}, {verdict.detail}"


def database_write_verdict() -> Verdict:
    """Commit a write: a full disk, a read-only replica or a held lock fail here, where a SELECT would pass."""
    probe = HealthProbe(id=1, written_at=timezone.now(), written_by=f"{socket.gethostname()}:{os.getpid()}"[:100])
    try:
        with transaction.atomic():
            HealthProbe.objects.bulk_create(
                [probe], update_conflicts=True, unique_fields=["id"], update_fields=["written_at", "written_by"]
            )
    except Exception as exc:  # a health check reports failures, it never raises them
        return Verdict(False, f"the database answers but does not take writes: {type(exc).__name__}: {exc}")
    return Verdict(True, "read and write ok")


def check_cache() -> str:
    key, value = f"health:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, 10)
    if cache.get(key) != value:
        raise CheckFailed("the cache did not return what was written")
    cache.delete(key)
    return "read and write ok"


def check_queue() -> str:
    broker = get_broker()
    if not broker.ping():
        raise CheckFailed(f"broker {broker.info()} does not answer")
    return f"{broker.info()}, {broker.queue_size()} waiting"


def check_storage() -> str:
    name = default_storage.save(f"health/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name, "rb") as stored:
            if stored.read() != b"ok":
                raise CheckFailed("a file written to storage reads back different")
    finally:
        default_storage.delete(name)
    return f"{storage_location()}: write, read back and delete ok"


def storage_location() -> str:
    """Where files go: the bucket (and its endpoint) or the media directory."""
    if settings.AWS_STORAGE_BUCKET_NAME:
        endpoint = settings.AWS_S3_ENDPOINT_URL or "AWS"
        return f"s3://{settings.AWS_STORAGE_BUCKET_NAME} at {endpoint}"
    return f"directory {settings.MEDIA_ROOT}"


@dataclass(frozen=True)
class DiskReading:
    name: str  # "data" (DATA_DIR: database, backups, logs) or "media" (MEDIA_ROOT: the images)
    path: Path
    free_bytes: int
    free_percent: float

    @property
    def low(self) -> bool:
        return self.free_percent < settings.ALERT_DISK_FREE_PERCENT

    def describe(self) -> str:
        text = f"{self.name} {self.free_percent:.1f}% free ({self.free_bytes // 2**20} MiB)"
        return f"only {text} under {self.path}, limit {settings.ALERT_DISK_FREE_PERCENT}%" if self.low else text


def disk_readings() -> list[DiskReading]:
    """Free space where the data directory lives and, when it is another file system, where the media lives."""
    readings: list[DiskReading] = []
    devices: set[object] = set()
    for name, path in (("data", Path(settings.DATA_DIR)), ("media", Path(settings.MEDIA_ROOT))):
        found = resources.existing_ancestor(path)
        device = _device(found)
        if device in devices:
            continue  # the same file system: one reading covers both
        devices.add(device)
        usage = resources.disk_usage(found)
        free_percent = 100 * usage.free / usage.total if usage.total else 0.0
        readings.append(DiskReading(name=name, path=path, free_bytes=usage.free, free_percent=free_percent))
    return readings


def _device(path: Path) -> object:
    return path.stat().st_dev


def check_disk() -> str:
    readings = disk_readings()
    if any(reading.low for reading in readings):
        raise CheckFailed("; ".join(reading.describe() for reading in readings if reading.low))
    shared = "" if len(readings) > 1 else " (media on the same file system)"
    return ", ".join(reading.describe() for reading in readings) + shared


def check_workers() -> str:
    nodes = health_stats.live_worker_nodes()
    if nodes:
        return f"{len(nodes)} cluster(s), {sum(node.workers for node in nodes)} worker process(es)"
    if health_stats.worker_nodes_known():
        raise CheckFailed(f"no worker node has sent a heartbeat in the last {settings.WORKER_DEAD_AFTER_SECONDS} s")
    # No cluster has ever written a node heartbeat (one started by a django-q build without the
    # engine's command): fall back to django-q's own cluster stats.
    clusters = resources.live_clusters()
    if not clusters:
        raise CheckFailed("no worker cluster has reported in the last 30 seconds")
    workers = sum(len(s.workers) for s in clusters)
    return f"{len(clusters)} cluster(s), {workers} worker process(es)"


def progress_verdict(*, now: datetime | None = None) -> Verdict:
    """Stalled: work is outstanding, a worker node is alive, nothing is in flight, and for more than
    STALL_ALERT_SECONDS no generation finished, no outstanding work became due and no live node started.

    Outstanding: due pending generations (in batches neither paused nor being cancelled) and running
    ones that no worker is on. In flight: a worker of a live node is on it within its lease, so a long
    provider call is not a stall, while attempts handed to workers that never start them are.
    """
    now = now or timezone.now()
    nodes = health_stats.live_worker_nodes(now=now)
    pending = health_stats.pending_work_count(now=now)
    running = health_stats.running_counts(live_node_ids=[node.id for node in nodes], now=now)
    waiting = pending + running.dispatched + running.stuck
    summary = (
        f"{pending} waiting, {running.dispatched} dispatched, {running.in_flight} in flight, {running.stuck} stuck"
    )
    if not waiting or not nodes or running.in_flight:
        return Verdict(True, summary)  # the common case: answered from the status index alone
    last_finished = health_stats.last_finished_at()
    due_since = [health_stats.oldest_pending_due_at(now=now), running.oldest_waiting_since]
    became_due = min(moment for moment in due_since if moment is not None)
    moments = [last_finished, became_due, min(node.started_at for node in nodes)]
    quiet_seconds = (now - max(moment for moment in moments if moment is not None)).total_seconds()
    if quiet_seconds <= settings.STALL_ALERT_SECONDS:
        return Verdict(True, f"{summary}, quiet for {quiet_seconds:.0f} s")
    return Verdict(
        False,
        f"stalled: {waiting} image(s) waiting ({summary}) while {len(nodes)} worker node(s) are alive, "
        f"but no worker is on any and none finished for {quiet_seconds:.0f} s "
        f"(STALL_ALERT_SECONDS={settings.STALL_ALERT_SECONDS}); last finished {_ago(last_finished, now)}",
    )


def results_verdict(*, now: datetime | None = None) -> Verdict:
    """Each live node's django-q monitor must save finished tasks: failing when it is dead while results
    wait, or when its result queue has not shrunk for ENGINE_RESULTS_STALL_SECONDS (the node's own
    threshold for restarting its cluster: seen here, that restart is due or did not help)."""
    nodes = health_stats.live_worker_nodes(now=now)
    limit = settings.ENGINE_RESULTS_STALL_SECONDS
    problems = []
    for node in nodes:
        if node.monitor_alive is False and node.results_backlog:
            problems.append(
                f"node {node.id} on {node.host}: the django-q monitor is dead, "
                f"{node.results_backlog} finished task(s) not saved"
            )
        elif node.results_stalled_seconds > limit:
            problems.append(
                f"node {node.id} on {node.host}: {node.results_backlog} result(s) not saved for "
                f"{node.results_stalled_seconds:.0f} s (ENGINE_RESULTS_STALL_SECONDS={limit:g})"
            )
    if problems:
        return Verdict(False, "; ".join(problems))
    backlog = sum(node.results_backlog for node in nodes)
    return Verdict(True, f"{len(nodes)} node(s) saving results, {backlog} waiting")


def check_progress() -> str:
    return _raise_unless_ok(progress_verdict())


def check_results() -> str:
    return _raise_unless_ok(results_verdict())


def _raise_unless_ok(verdict: Verdict) -> str:
    if not verdict.ok:
        raise CheckFailed(verdict.detail)
    return verdict.detail


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    return f"{max(0.0, (now - moment) / timedelta(seconds=1)):.0f} s ago"


LIVENESS: dict[str, Callable[[], str]] = {"process": check_process}
# What `/health` reports: what a request or a batch needs right now, including somewhere to put images.
CORE = ("database", "cache", "queue", "storage", "workers")
READINESS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "cache": check_cache,
    "queue": check_queue,
    "storage": check_storage,
    "disk": check_disk,
    "workers": check_workers,
    "progress": check_progress,
    "results": check_results,
}
CHECKS = {**LIVENESS, **READINESS}


def run_checks(names: list[str] | None = None) -> dict[str, CheckResult]:
    results = {}
    for name in names or list(READINESS):
        started = time.perf_counter()
        try:
            detail, ok = CHECKS[name](), True
        except CheckFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # a health check reports failures, it never raises them
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results[name] = CheckResult(ok=ok, detail=detail, duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return results
