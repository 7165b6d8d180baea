"""System samples, queue readings, the sweeper and task counters, and metric retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from generation.models import Batch
from monitoring import selectors
from monitoring.models import EventCount, RequestStats, SystemSample
from monitoring.services import event_count_add, metrics_prune, queue_reading, system_sample_record
from monitoring.task_signals import on_post_execute


@pytest.mark.django_db
def test_a_sample_reads_host_and_queue(make_batch: Any) -> None:
    make_batch(run=False)
    sample = system_sample_record()
    assert 0 <= sample.cpu_percent <= 100 and 0 < sample.memory_percent <= 100
    assert sample.disk_total_bytes > sample.disk_free_bytes > 0
    assert sample.queued == 2 and sample.running == 0 and sample.oldest_queued_seconds is not None


@pytest.mark.django_db
def test_queue_reading_counts_no_workers_without_a_cluster() -> None:
    assert queue_reading()["workers_alive"] == 0


@pytest.mark.django_db
def test_the_sweepers_repairs_are_counted() -> None:
    task = {
        "id": "t1",
        "func": "generation.tasks.sweep",
        "success": True,
        "result": {"redelivered": 2, "requeued": 1, "failed": 0},
    }
    on_post_execute(sender="django_q", func=None, task=task)
    since = timezone.now() - timedelta(hours=1)
    assert selectors.event_totals(since, "sweeper.") == {"redelivered": 2, "requeued": 1}
    assert selectors.event_totals(since, "tasks.") == {"succeeded": 1}


@pytest.mark.django_db
def test_counters_add_up_within_a_minute() -> None:
    event_count_add(name="x", value=2)
    event_count_add(name="x", value=3)
    assert EventCount.objects.get(name="x").value == 5


@pytest.mark.django_db
def test_pruning_removes_old_samples_but_never_batches(make_batch: Any, settings: Any) -> None:
    batch = make_batch()
    old = timezone.now() - timedelta(days=settings.METRICS_RETENTION_DAYS + 1)
    Batch.objects.filter(pk=batch.pk).update(created_at=old)
    RequestStats.objects.create(minute=old, route="r", method="GET", count=1)
    RequestStats.objects.create(minute=None, route="r", method="GET", count=1)
    system_sample_record()
    SystemSample.objects.update(taken_at=old)
    deleted = metrics_prune()
    assert deleted["request_minutes"] == 1 and deleted["system_samples"] == 1
    assert RequestStats.objects.filter(minute__isnull=True).count() == 1  # totals stay
    assert Batch.objects.filter(pk=batch.pk).exists()


@pytest.mark.django_db
def test_provider_table_reports_429s_retries_and_latency(make_batch: Any) -> None:
    batch = make_batch(prompts=["a", "b", "c"])
    first = batch.generations.first()
    batch.generations.update(provider_latency_ms=100, attempts=2)
    batch.generations.filter(pk=first.pk).update(status="failed", error_code="rate_limited")
    row = selectors.provider_table(timezone.now() - timedelta(hours=1))[0]
    assert (row["calls"], row["failed"], row["rate_limited"], row["retries"]) == (3, 1, 1, 3)
    # Latency comes from the rollups' histogram: an estimate inside the bucket that holds 100 ms.
    assert 0 < row["p95_ms"] <= 250 and row["errors"] == {"rate_limited": 1}
