"""Alert rules: firing, one notification per incident, cooldown before the all-clear, delivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from generation.models import GenerationStatus
from monitoring import alerts
from monitoring.models import AlertEvent, AlertState, RequestStats
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
    batch.generations.update(created_at=timezone.now() - timedelta(seconds=settings.ALERT_QUEUE_AGE_SECONDS + 60))
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
