"""Rollups of finished generations (generation/rollups.py) and the reads built on them (generation/stats.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from generation import rollups, selectors, stats
from generation.models import Generation, GenerationRollup, RollupState
from generation.rollups import MINUTE, floor, rollup_advance


@pytest.fixture
def finished(make_batch: Any, owner: Any) -> Any:
    """Four images of one batch finished two minutes ago: 3 succeeded (one after a retry), 1 rate-limited."""
    batch = make_batch(prompts=["a", "b", "c", "d"], run=False)
    at = floor(timezone.now(), MINUTE) - timedelta(minutes=2)
    Generation.objects.filter(batch=batch).update(
        status="succeeded", finished_at=at, provider_latency_ms=1500, cost_usd=Decimal("0.04"), attempts=1
    )
    first, last = batch.generations.order_by("position")[0], batch.generations.order_by("position")[3]
    Generation.objects.filter(pk=first.pk).update(attempts=2)
    Generation.objects.filter(pk=last.pk).update(status="failed", error_code="rate_limited", cost_usd=None)
    return batch


def _rows(resolution: str) -> list[GenerationRollup]:
    return list(GenerationRollup.objects.filter(resolution=resolution))


def test_a_run_rolls_up_minutes_hours_and_all_time(finished: Any, owner: Any) -> None:
    rollup_advance()
    for resolution in ("minute", "hour", "total"):
        (row,) = _rows(resolution)
        assert (row.owner_id, row.provider, row.succeeded, row.failed) == (owner.pk, "local", 3, 1)
        assert (row.rate_limited, row.retries, row.cost_usd, row.latency_count) == (1, 1, Decimal("0.12"), 4)
        assert row.errors == {"rate_limited": 1} and row.le_3 == 4  # 1500 ms lies in (1000, 2000]
    assert RollupState.objects.get().rolled_up_to == floor(timezone.now(), MINUTE)


def test_running_again_changes_nothing(finished: Any) -> None:
    rollup_advance()
    before = [(r.resolution, r.succeeded, r.failed, r.cost_usd) for r in GenerationRollup.objects.order_by("id")]
    rollup_advance()
    rollup_advance(now=timezone.now() + timedelta(minutes=1))
    after = [(r.resolution, r.succeeded, r.failed, r.cost_usd) for r in GenerationRollup.objects.order_by("id")]
    assert sorted(after) == sorted(before)


def test_a_late_commit_inside_the_overlap_is_counted_once(finished: Any, make_batch: Any) -> None:
    rollup_advance()
    late = make_batch(prompts=["late"], run=False)
    Generation.objects.filter(batch=late).update(
        status="succeeded", finished_at=floor(timezone.now(), MINUTE) - timedelta(minutes=3)
    )
    rollup_advance()
    rollup_advance()
    assert _rows("total")[0].succeeded == 4 and sum(r.succeeded for r in _rows("hour")) == 4


def test_reads_add_what_finished_after_the_watermark(finished: Any, make_batch: Any, owner: Any) -> None:
    rollup_advance()
    fresh = make_batch(prompts=["now"], run=False)
    Generation.objects.filter(batch=fresh).update(status="succeeded", finished_at=timezone.now())
    assert stats.totals_by_model()[("local", "procedural-v1")].counts["succeeded"] == 4
    usage = selectors.usage_summary(user=owner)
    assert usage["images"] == 4 and usage["cost_usd"] == Decimal("0.12")
    window = stats.FinishedWindow(timezone.now() - timedelta(hours=1))
    assert window.by_owner()[owner.pk].counts["succeeded"] == 4
    slots = window.by_slot()
    assert sum(g.counts["succeeded"] for g in slots) == 4


def test_another_users_usage_is_not_mine(finished: Any, other_user: Any) -> None:
    rollup_advance()
    assert selectors.usage_summary(user=other_user) == {"images": 0, "cost_usd": Decimal("0"), "by_model": []}


def test_old_minutes_are_pruned_but_hours_and_totals_stay(finished: Any) -> None:
    rollup_advance()
    rollup_advance(now=timezone.now() + timedelta(days=3))
    assert not _rows("minute") and len(_rows("hour")) == 1 and _rows("total")[0].succeeded == 3


def test_the_week_view_reads_hourly_rollups(finished: Any, staff: Any, client: Client) -> None:
    rollup_advance()
    client.force_login(staff)
    data = client.get("/monitoring/data", {"range": "week"}).json()
    assert sum(data["generations"]["images_per_minute"]) * 60 == pytest.approx(3)
    (provider,) = data["tables"]["providers"]
    assert (provider["calls"], provider["failed"], provider["errors"]) == (4, 1, {"rate_limited": 1})
    assert data["tables"]["top_users"][0]["images"] == 3


@pytest.mark.django_db
def test_metrics_expose_provider_latency_as_a_histogram(finished: Any, client: Client) -> None:
    rollup_advance()
    text = client.get("/metrics").content.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    latency = families["imagegen_provider_latency_seconds"]
    assert latency.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in latency.samples if s.name.endswith("_bucket")}
    assert (buckets["1.0"], buckets["2.0"], buckets["+Inf"]) == (0, 4, 4)
    cost = families["imagegen_generation_cost_usd"].samples[0].value
    assert cost == pytest.approx(0.12)


def test_the_rollup_runs_every_minute_as_a_scheduled_task(finished: Any) -> None:
    import importlib

    from django.apps import apps
    from django_q.models import Schedule

    from generation import tasks

    # The migration writes the schedule; a transactional test earlier on this worker may have flushed
    # the table, so the migration's own step is run again (it is idempotent) before reading it back.
    importlib.import_module("generation.migrations.0008_search_rollups").add_schedule(apps, None)
    schedule = Schedule.objects.get(name="generation-rollup")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("generation.tasks.rollup", "I", 1)
    assert tasks.rollup()["groups"] == 1


@pytest.mark.parametrize("chunk", [2, 3, 4, 100])
def test_a_range_longer_than_one_read_is_streamed_whole(finished: Any, monkeypatch: Any, chunk: int) -> None:
    monkeypatch.setattr(rollups, "CHUNK", chunk)  # four rows: one plain read, or a stream of several
    rows = list(rollups.finished_between(floor(timezone.now(), MINUTE) - timedelta(hours=1)))
    assert len(rows) == 4
    assert {row[1] for row in rows} == {finished.owner_id}
