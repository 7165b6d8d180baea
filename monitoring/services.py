"""Writes of the monitoring app: system samples, event counters and metric retention."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from generation import health_stats, stats
from generation.queue import queue_size
from monitoring import resources
from monitoring.models import AlertEvent, AvailabilitySample, EventCount, RequestStats, SystemSample

logger = logging.getLogger(__name__)


def queue_reading(*, now: datetime | None = None) -> dict[str, object]:
    """Generations waiting and running, the age of the oldest waiting one, and live workers."""
    if health_stats.worker_nodes_known():
        workers = sum(node.workers for node in health_stats.live_worker_nodes(now=now))
    else:  # clusters that predate node heartbeats
        workers = sum(len(stat.workers) for stat in resources.live_clusters())
    return {**stats.queue_counts(now=now), "broker_queue": queue_size(), "workers_alive": workers}


def system_sample_record() -> SystemSample:
    """Read the host, this project's processes and the queue, and store one sample."""
    processes = resources.project_processes()
    disk = resources.disk_usage()
    return SystemSample.objects.create(
        **resources.host_reading(),
        web_rss_bytes=processes["web"].rss_bytes,
        web_processes=processes["web"].processes,
        worker_rss_bytes=processes["worker"].rss_bytes,
        worker_processes=processes["worker"].processes,
        disk_free_bytes=disk.free,
        disk_total_bytes=disk.total,
        **queue_reading(),
    )


def event_count_add(*, name: str, value: int = 1, at: datetime | None = None) -> None:
    """Add to a named per-minute counter; concurrent workers add to the same row."""
    if value <= 0:
        return
    minute = (at or timezone.now()).replace(second=0, microsecond=0)
    counter = EventCount.objects.filter(minute=minute, name=name)
    if counter.update(value=F("value") + value):
        return
    try:
        with transaction.atomic():
            EventCount.objects.create(minute=minute, name=name, value=value)
    except IntegrityError:  # created meanwhile by another worker
        counter.update(value=F("value") + value)


def metrics_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete raw samples older than METRICS_RETENTION_DAYS and day-old canary batches; never users' work."""
    from monitoring.availability import canary_prune

    cutoff = (now or timezone.now()) - timedelta(days=settings.METRICS_RETENTION_DAYS)
    alert_cutoff = (now or timezone.now()) - timedelta(days=max(settings.METRICS_RETENTION_DAYS, 365))
    availability_cutoff = (now or timezone.now()) - timedelta(days=max(settings.METRICS_RETENTION_DAYS, 31))
    deleted = {
        # Minute rows only: the all-time totals (minute is null) feed the Prometheus counters.
        "request_minutes": RequestStats.objects.filter(minute__lt=cutoff).delete()[0],
        "system_samples": SystemSample.objects.filter(taken_at__lt=cutoff).delete()[0],
        "event_counts": EventCount.objects.filter(minute__lt=cutoff).delete()[0],
        "alert_events": AlertEvent.objects.filter(created_at__lt=alert_cutoff).delete()[0],
        # The 30-day availability window needs 30 days of probes, whatever the raw retention.
        "availability_samples": AvailabilitySample.objects.filter(taken_at__lt=availability_cutoff).delete()[0],
        "canary_batches": canary_prune(now=now or timezone.now()),
    }
    logger.info("Pruned metrics older than %s", cutoff.isoformat(), extra={"deleted": deleted})
    return deleted
