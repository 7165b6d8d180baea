"""The availability probe, the canary batch, the error budget and the burn-rate and latency alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from generation.models import Batch, BatchStatus
from monitoring import alerts, health, selectors
from monitoring.availability import availability, availability_probe, burn_rate, canary_prune
from monitoring.models import AvailabilitySample, RequestStats

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture
def workers_up(monkeypatch: Any) -> None:
    monkeypatch.setitem(health.CHECKS, "workers", lambda: "1 cluster(s), 2 worker process(es)")


@pytest.fixture
def probe(django_capture_on_commit_callbacks: Any) -> Any:
    """Run the probe at `now`; the canary it submits is rendered at once by the synchronous queue."""

    def run(now: Any = None, *, render: bool = True) -> AvailabilitySample | None:
        with django_capture_on_commit_callbacks(execute=render):
            return availability_probe(now=now)

    return run


def sample(at: Any, *, up: bool, seconds: float = 60.0) -> AvailabilitySample:
    return AvailabilitySample.objects.create(taken_at=at, seconds=seconds, up=up, web_ok=up, work_ok=up)


def test_the_first_probe_submits_a_canary_as_a_system_account_that_cannot_log_in(workers_up: Any, probe: Any) -> None:
    first = probe()
    assert first is not None and first.up and first.web_ok and first.work_ok is None
    canary = Batch.objects.get()
    assert canary.status == BatchStatus.COMPLETED and canary.provider == "local" and canary.total == 1
    user = User.objects.get(username="canary")
    assert canary.owner == user and not user.is_active and not user.has_usable_password()


def test_a_canary_is_submitted_every_interval_not_every_minute(workers_up: Any, probe: Any, settings: Any) -> None:
    settings.CANARY_INTERVAL_MINUTES = 5
    now = timezone.now()
    for minute in range(7):
        probe(now + timedelta(minutes=minute))
    assert Batch.objects.count() == 2


def test_a_canary_finished_within_the_deadline_means_work_is_done(workers_up: Any, probe: Any, settings: Any) -> None:
    now = timezone.now()
    probe(now)
    later = probe(now + timedelta(seconds=settings.CANARY_DEADLINE_SECONDS + 5))
    assert later is not None and later.up and later.work_ok is True
    assert "finished in" in later.detail


def test_a_canary_still_waiting_after_the_deadline_makes_the_minute_down(
    workers_up: Any, probe: Any, settings: Any
) -> None:
    now = timezone.now()
    probe(now, render=False)  # submitted, but no worker takes it
    late = probe(now + timedelta(seconds=settings.CANARY_DEADLINE_SECONDS + 5), render=False)
    assert late is not None and not late.up and late.web_ok and late.work_ok is False
    assert "queued after" in late.detail


def test_a_failing_dependency_makes_the_minute_down_and_submits_no_canary(probe: Any) -> None:
    down = probe()  # no worker cluster runs in unit tests
    assert down is not None and not down.up and not down.web_ok
    assert "workers" in down.detail and not Batch.objects.exists()


def test_one_probe_per_minute_across_nodes(workers_up: Any, probe: Any) -> None:
    now = timezone.now().replace(second=10)
    assert probe(now) is not None
    assert probe(now + timedelta(seconds=30)) is None


def test_a_stretch_without_probes_is_recorded_as_down(workers_up: Any, probe: Any) -> None:
    now = timezone.now()
    probe(now)
    probe(now + timedelta(minutes=11))
    gap = AvailabilitySample.objects.get(up=False)
    assert gap.seconds == pytest.approx(600) and "no probe ran" in gap.detail
    measured = availability(window=DAY, now=now + timedelta(minutes=11))
    assert measured.total_seconds == pytest.approx(720) and measured.up_seconds == pytest.approx(120)


def test_availability_and_error_budget_over_the_window(settings: Any) -> None:
    settings.SLO_TARGET = 99.5
    now = timezone.now()
    for minute in range(1000):
        sample(now - timedelta(minutes=minute), up=minute not in (10, 20))
    measured = availability(window=DAY, name="1d", now=now)
    assert measured.ratio == pytest.approx(0.998)
    assert measured.budget_remaining == pytest.approx(0.6)  # 0.2 % of the allowed 0.5 % spent
    shown = measured.as_dict()
    assert shown["availability_percent"] == 99.8 and shown["budget_remaining_percent"] == 60.0
    assert shown["downtime_seconds"] == 120 and shown["allowed_downtime_seconds"] == 300


def test_probes_that_stopped_count_as_down_until_now() -> None:
    now = timezone.now()
    for minute in range(10, 70):
        sample(now - timedelta(minutes=minute), up=True)
    measured = availability(window=DAY, now=now)
    assert measured.ratio == pytest.approx(3600 / (3600 + 600), rel=0.01)


def test_no_probe_yet_means_no_figure_rather_than_a_perfect_one() -> None:
    measured = availability(window=DAY)
    assert measured.ratio is None and measured.budget_remaining is None


@pytest.fixture
def only(monkeypatch: Any) -> Any:
    return lambda *rules: monkeypatch.setattr(alerts, "RULES", list(rules))


def test_a_fast_budget_burn_fires_only_when_both_windows_burn(only: Any, settings: Any) -> None:
    settings.SLO_TARGET = 99.5
    only(alerts.rule_slo_burn)
    now = timezone.now()
    for minute in range(60):  # 10 bad minutes out of 60, long ago in the hour: the last 5 minutes are fine
        sample(now - timedelta(minutes=minute), up=not 30 <= minute < 40)
    assert burn_rate(window=timedelta(hours=1), now=now) == pytest.approx(33.33, rel=0.01)
    assert alerts.alerts_evaluate(now=now) == []
    for minute in range(3):  # and now the last minutes fail too
        AvailabilitySample.objects.filter(taken_at=now - timedelta(minutes=minute)).update(up=False)
    fired = alerts.alerts_evaluate(now=now)
    assert {event.key for event in fired} == {"slo_burn_fast", "slo_burn_slow"}
    assert "99.5% availability objective" in fired[0].message


def test_api_latency_over_the_objective_fires(only: Any, settings: Any) -> None:
    settings.API_LATENCY_SLO_MS = 500
    settings.API_LATENCY_MIN_REQUESTS = 10
    only(alerts.rule_api_latency)
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    RequestStats.objects.create(minute=minute, route="api-batch-list", method="GET", count=20, le_4=10, le_8=10)
    RequestStats.objects.create(minute=minute, route="health", method="GET", count=1000, le_0=1000)
    fired = alerts.alerts_evaluate(now=now)
    assert [event.key for event in fired] == ["api_latency"]
    assert "p95" in fired[0].message and "objective 500 ms" in fired[0].message


def test_fast_api_requests_do_not_fire(only: Any, settings: Any) -> None:
    settings.API_LATENCY_MIN_REQUESTS = 10
    only(alerts.rule_api_latency)
    minute = timezone.now().replace(second=0, microsecond=0)
    RequestStats.objects.create(minute=minute, route="api-batch-list", method="GET", count=100, le_3=100)
    assert alerts.alerts_evaluate() == []


def test_the_dashboard_and_metrics_show_availability(client: Client, staff: Any, workers_up: Any, probe: Any) -> None:
    probe()
    client.force_login(staff)
    data = client.get("/monitoring/data?range=hour").json()
    shown = data["availability"]
    assert [w["window"] for w in shown["windows"]] == ["1d", "7d", "30d"]
    assert shown["slo_target_percent"] == 99.5 and shown["latest"]["up"] is True
    assert shown["windows"][0]["availability_percent"] == 100.0
    assert "table-availability" in client.get("/monitoring/").content.decode()
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").content.decode())}
    assert families["imagegen_slo_target_ratio"].samples[0].value == pytest.approx(0.995)
    ratio = {s.labels["window"]: s.value for s in families["imagegen_availability_ratio"].samples}
    assert ratio == {"1d": 1.0, "7d": 1.0, "30d": 1.0}
    assert {s.labels["window"] for s in families["imagegen_error_budget_remaining_ratio"].samples} == set(ratio)


def test_canary_batches_stay_out_of_users_figures(workers_up: Any, probe: Any, make_batch: Any) -> None:
    make_batch()
    probe()
    since = timezone.now() - DAY
    assert [row["user"] for row in selectors.top_users(since)] == ["owner"]
    usage = selectors.usage(since)
    assert usage["active_users"] == 1 and usage["batches"] == 1
    assert {row["user"] for row in usage["images_per_user_per_day"]} == {"owner"}


def test_day_old_canaries_are_pruned_with_their_files(workers_up: Any, probe: Any, make_batch: Any) -> None:
    from django.core.files.storage import default_storage

    make_batch()
    probe()
    canary = Batch.objects.get(owner__username="canary")
    image = canary.generations.get().image.name
    assert canary_prune(now=timezone.now()) == 0
    assert canary_prune(now=timezone.now() + DAY + timedelta(minutes=1)) > 0
    assert not Batch.objects.filter(pk=canary.pk).exists() and not default_storage.exists(image)
    assert Batch.objects.count() == 1  # the user's batch is untouched
