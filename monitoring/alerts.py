"""Alert rules, evaluated every minute; an incident notifies once when it fires and once when it clears.

A rule that stops matching is only declared clear after it has stayed clear for
ALERT_COOLDOWN_MINUTES, so a flapping condition is one incident, not a stream of messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Sum
from django.utils import timezone

from generation import stats
from monitoring import health, resources
from monitoring.models import BUCKET_FIELDS, AlertEvent, AlertKind, AlertState, RequestStats
from monitoring.notify import alert_notify

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    key: str
    firing: bool
    message: str


def rule_error_rate(now: datetime) -> list[Finding]:
    window = now - timedelta(minutes=settings.ALERT_ERROR_RATE_MINUTES)
    totals = RequestStats.objects.filter(minute__gte=window).aggregate(
        count=Sum("count", default=0), errors=Sum("server_errors", default=0)
    )
    count, errors = totals["count"], totals["errors"]
    rate = errors / count if count else 0.0
    firing = count >= settings.ALERT_ERROR_RATE_MIN_REQUESTS and rate > settings.ALERT_ERROR_RATE
    message = (
        f"{rate:.1%} of {count} requests failed with a server error in the last "
        f"{settings.ALERT_ERROR_RATE_MINUTES} minutes (threshold {settings.ALERT_ERROR_RATE:.0%})"
    )
    return [Finding("error_rate", firing, message)]


def rule_queue_age(now: datetime) -> list[Finding]:
    from monitoring.services import queue_reading

    age = queue_reading(now=now)["oldest_queued_seconds"]
    firing = age is not None and float(age) > settings.ALERT_QUEUE_AGE_SECONDS  # type: ignore[arg-type]
    message = (
        f"the oldest queued image has waited {age:.0f} s (threshold {settings.ALERT_QUEUE_AGE_SECONDS} s)"
        if age is not None
        else "nothing is waiting in the queue"
    )
    return [Finding("queue_age", firing, message)]


def rule_no_workers(now: datetime) -> list[Finding]:
    # The same judgement as the readiness check: worker node heartbeats (django-q stats before any exist).
    result = health.run_checks(["workers"])["workers"]
    return [Finding("no_workers", not result.ok, result.detail)]


def rule_provider_failing(now: datetime) -> list[Finding]:
    window = now - timedelta(minutes=settings.ALERT_PROVIDER_MINUTES)
    by_provider: dict[str, dict[str, int]] = {}
    for (provider, _owner), tally in stats.FinishedWindow(window).by_provider_and_owner().items():
        if provider and tally.finished:
            row = by_provider.setdefault(provider, {"calls": 0, "failed": 0, "users": 0})
            row["calls"] += tally.finished
            row["failed"] += tally.counts["failed"]
            row["users"] += bool(tally.counts["failed"])  # users with failed images
    findings = []
    for provider, row in by_provider.items():
        rate = row["failed"] / row["calls"]
        # One user's own broken key (or odd prompts) fails only their images: that is not an outage.
        firing = (
            row["calls"] >= settings.ALERT_PROVIDER_MIN_CALLS
            and rate > settings.ALERT_PROVIDER_FAILURE_RATE
            and row["users"] >= settings.ALERT_PROVIDER_MIN_USERS
        )
        message = (
            f"provider {provider}: {row['failed']} of {row['calls']} images of {row['users']} user(s) "
            f"failed in the last {settings.ALERT_PROVIDER_MINUTES} minutes ({rate:.0%})"
        )
        findings.append(Finding(f"provider_failing:{provider}", firing, message))
    return findings


def rule_disk(now: datetime) -> list[Finding]:
    usage = resources.disk_usage()
    free_percent = 100 * usage.free / usage.total if usage.total else 0.0
    message = f"{free_percent:.1f}% disk free under the data directory (threshold {settings.ALERT_DISK_FREE_PERCENT}%)"
    return [Finding("disk_space", free_percent < settings.ALERT_DISK_FREE_PERCENT, message)]


# Multiwindow, multi-burn-rate alerts on the availability SLO (Google SRE workbook, "Alerting on
# SLOs"): fast burns 2 % of a 30-day budget in an hour, slow burns 5 % in six hours. The short
# window makes an alert clear soon after the burning stops.
BURN_ALERTS = (
    ("slo_burn_fast", timedelta(hours=1), timedelta(minutes=5), 14.4),
    ("slo_burn_slow", timedelta(hours=6), timedelta(minutes=30), 6.0),
)


def rule_slo_burn(now: datetime) -> list[Finding]:
    from monitoring.availability import burn_rate

    findings = []
    for key, long, short, threshold in BURN_ALERTS:
        long_rate, short_rate = burn_rate(window=long, now=now), burn_rate(window=short, now=now)
        if long_rate is None or short_rate is None:
            continue
        firing = long_rate > threshold and short_rate > threshold
        message = (
            f"the error budget of the {settings.SLO_TARGET}% availability objective burns {long_rate}x over "
            f"{_span(long)} and {short_rate}x over {_span(short)} (threshold {threshold}x)"
        )
        findings.append(Finding(key, firing, message))
    return findings


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def rule_api_latency(now: datetime) -> list[Finding]:
    from monitoring.request_metrics import percentile_ms

    window = now - timedelta(minutes=settings.API_LATENCY_WINDOW_MINUTES)
    rows = RequestStats.objects.filter(minute__gte=window, route__startswith="api-").exclude(
        route__in=("api-schema", "api-docs")
    )
    totals = rows.aggregate(**{name: Sum(name, default=0) for name in BUCKET_FIELDS})
    buckets = [totals[name] for name in BUCKET_FIELDS]
    count, p95 = sum(buckets), percentile_ms(buckets, 0.95)
    firing = count >= settings.API_LATENCY_MIN_REQUESTS and p95 is not None and p95 > settings.API_LATENCY_SLO_MS
    message = (
        f"API latency p95 is {p95 or 0:.0f} ms over {count} requests in the last "
        f"{settings.API_LATENCY_WINDOW_MINUTES} minutes (objective {settings.API_LATENCY_SLO_MS:.0f} ms)"
    )
    return [Finding("api_latency", firing, message)]


# --- The engine's own health: the same verdicts as the readiness checks of the same names. ---


def rule_stall(now: datetime) -> list[Finding]:
    verdict = health.progress_verdict(now=now)
    return [Finding("stall", not verdict.ok, verdict.detail)]


def rule_results_not_processed(now: datetime) -> list[Finding]:
    verdict = health.results_verdict(now=now)
    return [Finding("results_not_processed", not verdict.ok, verdict.detail)]


def rule_storage_not_writable(now: datetime) -> list[Finding]:
    result = health.run_checks(["storage"])["storage"]
    return [Finding("storage_not_writable", not result.ok, result.detail)]


def rule_database_not_writable(now: datetime) -> list[Finding]:
    verdict = health.database_write_verdict()
    return [Finding("database_not_writable", not verdict.ok, verdict.detail)]


def rule_disk_media(now: datetime) -> list[Finding]:
    """Free space for images, when MEDIA_ROOT is not on the data directory's file system (`disk_space` covers that)."""
    media = next((reading for reading in health.disk_readings() if reading.name == "media"), None)
    if media is None:
        return [Finding("disk_space_media", False, "media is on the data directory's file system (see disk_space)")]
    return [Finding("disk_space_media", media.low, media.describe())]


RULES: list[Callable[[datetime], list[Finding]]] = [
    rule_error_rate,
    rule_queue_age,
    rule_no_workers,
    rule_provider_failing,
    rule_disk,
    rule_slo_burn,
    rule_api_latency,
    rule_stall,
    rule_results_not_processed,
    rule_storage_not_writable,
    rule_database_not_writable,
    rule_disk_media,
]


def alerts_evaluate(*, now: datetime | None = None) -> list[AlertEvent]:
    """Run every rule, move each alert's state, and notify the incidents that began or ended."""
    now = now or timezone.now()
    findings: list[Finding] = []
    for rule in RULES:
        try:
            findings.extend(rule(now))
        except Exception:  # one broken rule must not silence the others
            logger.exception("Alert rule %s could not be evaluated", rule.__name__)
    seen = {finding.key for finding in findings}
    # A provider that made no calls in the window has no finding; its open alert may clear.
    for state in AlertState.objects.filter(firing=True).exclude(key__in=seen):
        findings.append(Finding(state.key, False, "no longer observed"))
    events, unrecorded = [], []
    for finding in findings:
        try:
            event = _advance(finding, now)
        except DatabaseError as exc:
            unrecorded.append(f"{finding.key} ({type(exc).__name__}: {exc})")
            _notify_unrecorded(finding, now)
            continue
        if event is not None:
            events.append(event)
    if unrecorded:
        logger.error("Alert states could not be recorded: %s", "; ".join(unrecorded))
    for event in events:
        alert_notify(event=event)
    return events


# When the database takes no writes (full disk, read-only), alert states cannot be stored; firing
# findings are still sent, at most once per ALERT_COOLDOWN_MINUTES per rule and process.
_unrecorded_sent: dict[str, float] = {}


def _notify_unrecorded(finding: Finding, now: datetime) -> None:
    last = _unrecorded_sent.get(finding.key)
    if not finding.firing or (last is not None and time.monotonic() - last < settings.ALERT_COOLDOWN_MINUTES * 60):
        return
    _unrecorded_sent[finding.key] = time.monotonic()
    message = f"{finding.message} (not recorded: the database takes no writes)"
    alert_notify(event=AlertEvent(key=finding.key, kind=AlertKind.FIRED, message=message, created_at=now))


def _advance(finding: Finding, now: datetime) -> AlertEvent | None:
    with transaction.atomic():
        state, _ = AlertState.objects.select_for_update().get_or_create(key=finding.key)
        state.checked_at = now
        event = None
        if finding.firing:
            state.clear_since = None
            if not state.firing:
                state.firing, state.since, state.message = True, now, finding.message
                event = AlertEvent.objects.create(key=finding.key, kind=AlertKind.FIRED, message=finding.message)
        elif state.firing:
            state.clear_since = state.clear_since or now
            if now - state.clear_since >= timedelta(minutes=settings.ALERT_COOLDOWN_MINUTES):
                state.firing, state.since, state.clear_since, state.message = False, now, None, finding.message
                event = AlertEvent.objects.create(key=finding.key, kind=AlertKind.RESOLVED, message=finding.message)
        state.save()
        return event


# When no scheduler has evaluated the rules for this long, the web processes do it instead:
# otherwise "no live workers" could never fire, since the schedule itself runs on a worker.
EVALUATION_OVERDUE = timedelta(minutes=3)


def alerts_evaluate_if_overdue(*, now: datetime | None = None) -> bool:
    from django.core.cache import cache
    from django.db.models import Max

    now = now or timezone.now()
    last = AlertState.objects.aggregate(last=Max("checked_at"))["last"]
    if last is not None and now - last < EVALUATION_OVERDUE:
        return False
    if not cache.add("monitoring:alerts-fallback", 1, 60):
        return False  # another web process is on it
    alerts_evaluate(now=now)
    return True
