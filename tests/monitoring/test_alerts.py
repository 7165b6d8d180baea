"""Alert rules: firing, one notification per incident, cooldown before the all-clear, delivery."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.db import OperationalError
from django.utils import timezone

from generation.models import Batch, GenerationStatus, WorkerNode
from monitoring import alerts, health
from monitoring.models import AlertEvent, AlertState, HealthProbe, RequestStats
from tests.fakeserver import Reply, fake_server


@pytest.fixture
def only(monkeypatch: Any) -> Any:
    def use(*rules: Any) -> None:
        monkeypatch.setattr(alerts, "RULES", list(rules))

    return use


@pytest.mark.django_db
def test_error_rate_fires_once_and_clears_after_the_cooldown(only: Any, settings: Any) -> None:
    settings.ALERT_EMAILS = ["ops@example.com"]
    only(alerts.rule_error_rate)
    now = timezone.now()
    RequestStats.objects.create(minute=now - timedelta(minutes=1), route="r", method="GET", count=100, server_errors=30)
    assert [e.kind for e in alerts.alerts_evaluate(now=now)] == ["fired"]
    assert alerts.alerts_evaluate(now=now + timedelta(minutes=1)) == []  # still the same incident
    assert len(mail.outbox) == 1 and "FIRING" in mail.outbox[0].subject
    later = now + timedelta(minutes=10)  # the bad minute left the 5-minute window
    assert alerts.alerts_evaluate(now=later) == []  # clear, but not yet for the cooldown
    resolved = alerts.alerts_evaluate(now=later + timedelta(minutes=settings.ALERT_COOLDOWN_MINUTES))
    assert [e.kind for e in resolved] == ["resolved"]
    assert len(mail.outbox) == 2 and "RESOLVED" in mail.outbox[1].subject


@pytest.mark.django_db
def test_a_flapping_condition_stays_one_incident(only: Any) -> None:
    state = {"firing": True}
    only(lambda now: [alerts.Finding("flappy", state["firing"], "x")])
    now = timezone.now()
    kinds = []
    for minute in range(6):
        state["firing"] = minute % 2 == 0
        kinds += [e.kind for e in alerts.alerts_evaluate(now=now + timedelta(minutes=minute))]
    assert kinds == ["fired"]


@pytest.mark.django_db
def test_few_requests_do_not_fire_the_error_rate(only: Any) -> None:
    only(alerts.rule_error_rate)
    RequestStats.objects.create(minute=timezone.now(), route="r", method="GET", count=3, server_errors=3)
    assert alerts.alerts_evaluate() == []


@pytest.mark.django_db
def test_no_workers_fires(only: Any) -> None:
    only(alerts.rule_no_workers)
    assert [e.key for e in alerts.alerts_evaluate()] == ["no_workers"]


@pytest.mark.django_db
def test_old_queued_work_fires(only: Any, make_batch: Any, settings: Any) -> None:
    only(alerts.rule_queue_age)
    batch = make_batch(run=False)
    submitted = timezone.now() - timedelta(seconds=settings.ALERT_QUEUE_AGE_SECONDS + 60)
    Batch.objects.filter(pk=batch.pk).update(created_at=submitted)  # a batch and its images are made together
    batch.generations.update(created_at=submitted)
    assert [e.key for e in alerts.alerts_evaluate()] == ["queue_age"]


@pytest.mark.django_db
def test_a_provider_failing_most_calls_fires_per_provider(only: Any, make_batch: Any, other_user: Any) -> None:
    only(alerts.rule_provider_failing)
    batch = make_batch(prompts=[f"p{i}" for i in range(6)])
    other = make_batch(other_user, prompts=["q"])
    for failing in (batch, other):
        failing.generations.update(status=GenerationStatus.FAILED, error_code="rate_limited")
    events = alerts.alerts_evaluate()
    assert [e.key for e in events] == [f"provider_failing:{batch.provider}"]
    assert "7 of 7 images of 2 user(s)" in events[0].message


@pytest.mark.django_db
def test_one_users_failing_images_do_not_fire_the_provider_alert(only: Any, make_batch: Any) -> None:
    only(alerts.rule_provider_failing)
    batch = make_batch(prompts=[f"p{i}" for i in range(10)])
    batch.generations.update(status=GenerationStatus.FAILED, error_code="invalid_api_key")
    assert alerts.alerts_evaluate() == []


@pytest.mark.django_db
def test_disk_almost_full_fires(only: Any, settings: Any) -> None:
    only(alerts.rule_disk)
    settings.ALERT_DISK_FREE_PERCENT = 101
    assert [e.key for e in alerts.alerts_evaluate()] == ["disk_space"]


@pytest.mark.django_db
def test_webhook_receives_the_alert_and_failures_are_recorded(only: Any, settings: Any) -> None:
    only(alerts.rule_no_workers)
    with fake_server() as server:
        server.route("POST", "/hook", Reply(204))
        settings.ALERT_WEBHOOK_URL = f"{server.url}/hook"
        alerts.alerts_evaluate()
        payload = server.requests[0].json()
    assert payload["rule"] == "no_workers" and payload["status"] == "firing"
    assert AlertEvent.objects.get().delivered == ["webhook"]


@pytest.mark.django_db
def test_a_failing_webhook_is_noted_on_the_event(only: Any, settings: Any) -> None:
    only(alerts.rule_no_workers)
    with fake_server() as server:
        server.route("POST", "/hook", Reply(500))
        settings.ALERT_WEBHOOK_URL = f"{server.url}/hook"
        alerts.alerts_evaluate()
    event = AlertEvent.objects.get()
    assert event.delivered == [] and "HTTP 500" in event.delivery_errors[0]
    assert AlertState.objects.get(key="no_workers").firing


@pytest.mark.django_db
def test_web_processes_evaluate_when_the_schedule_is_overdue(only: Any) -> None:
    only(alerts.rule_no_workers)
    assert alerts.alerts_evaluate_if_overdue() is True
    assert alerts.alerts_evaluate_if_overdue() is False  # just checked


# --- The engine's health: one alert per condition, the same verdicts as readiness. ---


@pytest.fixture
def node(db: None) -> WorkerNode:
    state = {"monitor_alive": True, "results_backlog": 0, "results_stalled_seconds": 0.0}
    return WorkerNode.objects.create(
        id="node-a", host="worker-1", pid=1, workers=2, started_at=timezone.now() - timedelta(hours=1), state=state
    )


@pytest.mark.django_db
def test_stalled_work_fires_stall(only: Any, node: WorkerNode, make_batch: Any, settings: Any) -> None:
    only(alerts.rule_stall)
    batch = make_batch(run=False)
    batch.generations.update(created_at=timezone.now() - timedelta(seconds=settings.STALL_ALERT_SECONDS + 60))
    events = alerts.alerts_evaluate()
    assert [e.key for e in events] == ["stall"]
    assert events[0].message.startswith("stalled: 2 image(s) waiting")


@pytest.mark.django_db
def test_work_that_moves_does_not_fire_stall(only: Any, node: WorkerNode, make_batch: Any) -> None:
    only(alerts.rule_stall)
    make_batch(run=False)
    assert alerts.alerts_evaluate() == []


@pytest.mark.django_db
def test_a_dead_result_monitor_fires_results_not_processed(only: Any, node: WorkerNode) -> None:
    only(alerts.rule_results_not_processed)
    WorkerNode.objects.update(state={"monitor_alive": False, "results_backlog": 3})
    events = alerts.alerts_evaluate()
    assert [e.key for e in events] == ["results_not_processed"] and "monitor is dead" in events[0].message


@pytest.mark.django_db
def test_unwritable_storage_fires(only: Any, settings: Any, tmp_path: Any) -> None:
    only(alerts.rule_storage_not_writable)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = str(blocked)
    assert [e.key for e in alerts.alerts_evaluate()] == ["storage_not_writable"]


@pytest.mark.django_db
def test_a_database_that_refuses_writes_fires(only: Any, monkeypatch: Any) -> None:
    only(alerts.rule_database_not_writable)

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(HealthProbe.objects, "bulk_create", full_disk)
    events = alerts.alerts_evaluate()
    assert [e.key for e in events] == ["database_not_writable"] and "disk is full" in events[0].message


@pytest.mark.django_db
def test_alerts_that_cannot_be_stored_are_still_sent_once(only: Any, settings: Any, monkeypatch: Any) -> None:
    settings.ALERT_EMAILS = ["ops@example.com"]
    only(lambda now: [alerts.Finding("database_not_writable", True, "the database does not take writes")])
    monkeypatch.setattr(alerts, "_unrecorded_sent", {})

    def cannot_store(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(alerts, "_advance", cannot_store)
    assert alerts.alerts_evaluate() == []
    assert alerts.alerts_evaluate() == []  # the next minute: not sent again within the cooldown
    assert len(mail.outbox) == 1
    assert "database_not_writable" in mail.outbox[0].subject and "not recorded" in mail.outbox[0].body


@pytest.mark.django_db
def test_low_space_for_media_on_its_own_file_system_fires(only: Any, monkeypatch: Any, settings: Any) -> None:
    only(alerts.rule_disk_media)
    media = health.DiskReading(name="media", path=Path(settings.MEDIA_ROOT), free_bytes=2**20, free_percent=1.0)
    monkeypatch.setattr(health, "disk_readings", lambda: [media])
    events = alerts.alerts_evaluate()
    assert [e.key for e in events] == ["disk_space_media"] and events[0].message.startswith("only media 1.0% free")


@pytest.mark.django_db
def test_media_on_the_data_file_system_leaves_it_to_disk_space(only: Any, settings: Any) -> None:
    only(alerts.rule_disk_media)
    settings.MEDIA_ROOT = str(Path(settings.DATA_DIR) / "media-not-created-yet")
    settings.ALERT_DISK_FREE_PERCENT = 101
    assert alerts.alerts_evaluate() == []
    assert AlertState.objects.get(key="disk_space_media").firing is False
