"""Availability measured from outside a request: a probe every minute, a canary batch, and the error budget.

The probe (a scheduled task) asks the platform's dependencies whether it answers, and looks at
the last canary: a one-image batch on the offline `local` provider, submitted every few minutes
through the same service and queue as a user's batch, by a system account that no one logs in
as. A minute is up when both hold. Availability over a window is the up time over all the time
since the first probe, where a stretch that no probe covered (no worker ran the schedule)
counts as down: a platform that cannot run its own probe is not doing work either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Max, Min, Q, Sum
from django.utils import timezone

from accounts.models import UserQuota
from generation.models import Batch, BatchStatus
from monitoring.health import run_checks
from monitoring.models import AvailabilitySample

logger = logging.getLogger(__name__)

# What "answered" means to the probe: what a request or a batch needs right now.
PROBE_CHECKS = ["database", "cache", "queue", "storage", "workers"]
# The scheduler runs the probe about once a minute; a gap up to this long is jitter, not an outage.
PROBE_GAP_SECONDS = 150.0
PROBE_SECONDS = 60.0
WINDOWS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
CANARY_PROMPT = "availability canary"
CANARY_KEEP = timedelta(days=1)


@dataclass(frozen=True)
class Availability:
    window: str
    ratio: float | None  # None: no probe has run in the window yet
    up_seconds: float
    total_seconds: float

    @property
    def budget_remaining(self) -> float | None:
        """Share of the window's error budget not yet spent (negative once overspent)."""
        if self.ratio is None:
            return None
        allowed = 1 - settings.SLO_TARGET / 100
        if allowed <= 0:
            return 0.0 if self.ratio < 1 else 1.0
        return 1 - (1 - self.ratio) / allowed

    def as_dict(self) -> dict[str, object]:
        return {
            "window": self.window,
            "availability_percent": None if self.ratio is None else round(100 * self.ratio, 3),
            "budget_remaining_percent": (
                None if self.budget_remaining is None else round(100 * self.budget_remaining, 1)
            ),
            "downtime_seconds": round(self.total_seconds - self.up_seconds),
            "allowed_downtime_seconds": round(self.total_seconds * (1 - settings.SLO_TARGET / 100)),
        }


# --- The canary --------------------------------------------------------------------------------


def canary_user() -> User:
    """The system account that owns canary batches: inactive, no password, a quota it never hits."""
    user, created = User.objects.get_or_create(
        username=settings.CANARY_USERNAME, defaults={"is_active": False, "first_name": "Availability canary"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        UserQuota.objects.update_or_create(
            user=user, defaults={"daily_images": 100_000, "max_images_per_batch": 1, "max_active_batches": 1000}
        )
    return user


def canary_batches() -> Q:
    """Filter for batches that are the canary's, to leave out of user-facing figures."""
    return Q(owner__username=settings.CANARY_USERNAME)


def canary_submit(*, now: datetime) -> Batch | None:
    """Submit a one-image canary batch when the last one is older than CANARY_INTERVAL_MINUTES."""
    from generation.services import batch_create, check_batch_request

    latest = Batch.objects.filter(canary_batches()).aggregate(last=Max("created_at"))["last"]
    if latest is not None and now - latest < timedelta(minutes=settings.CANARY_INTERVAL_MINUTES):
        return None
    spec = check_batch_request(name="canary", provider="local", prompts=[CANARY_PROMPT], width=256, height=256)
    return batch_create(owner=canary_user(), spec=spec)


def canary_state(*, now: datetime) -> tuple[bool | None, str]:
    """Whether the latest canary old enough to judge finished in time; None before there is one."""
    deadline = timedelta(seconds=settings.CANARY_DEADLINE_SECONDS)
    due = Batch.objects.filter(canary_batches(), created_at__lte=now - deadline).order_by("-created_at").first()
    if due is None:
        return None, "no canary old enough to judge yet"
    age = f"canary {due.pk} from {due.created_at:%H:%M:%S}"
    if due.status != BatchStatus.COMPLETED or due.finished_at is None:
        return False, f"{age} is {due.status} after {settings.CANARY_DEADLINE_SECONDS} s"
    took = (due.finished_at - due.created_at).total_seconds()
    if took > deadline.total_seconds():
        return False, f"{age} took {took:.0f} s (deadline {settings.CANARY_DEADLINE_SECONDS} s)"
    return True, f"{age} finished in {took:.1f} s"


def canary_prune(*, now: datetime) -> int:
    """Delete canary batches (and their files) older than a day; they only matter while fresh."""
    from generation.storage import delete_files

    old = Batch.objects.filter(canary_batches(), created_at__lt=now - CANARY_KEEP)
    for batch in old.prefetch_related("generations"):
        for generation in batch.generations.all():
            delete_files(generation.image.name or "", generation.thumbnail.name or "")
    return old.delete()[0]


# --- The probe -----------------------------------------------------------------------------------


def availability_probe(*, now: datetime | None = None) -> AvailabilitySample | None:
    """Record whether the platform answers and does work now; one probe at a time cluster-wide."""
    now = now or timezone.now()
    if not cache.add(f"monitoring:probe:{now:%Y%m%d%H%M}", 1, 120):
        return None  # this minute is probed already (by another node's scheduler, or a late run)
    checks = run_checks(PROBE_CHECKS)
    failing = [f"{name}: {result.detail}" for name, result in checks.items() if not result.ok]
    web_ok = not failing
    work_ok, canary_detail = canary_state(now=now)
    if settings.CANARY_ENABLED and web_ok:
        try:
            canary_submit(now=now)
        except Exception as exc:  # a canary that cannot even be submitted means no work is possible
            logger.exception("The availability canary could not be submitted")
            work_ok, canary_detail = False, f"canary not submitted: {type(exc).__name__}: {exc}"
    if not settings.CANARY_ENABLED:
        work_ok, canary_detail = None, "canary disabled"
    detail = "; ".join([*failing, canary_detail])
    return _record(now=now, up=web_ok and work_ok is not False, web_ok=web_ok, work_ok=work_ok, detail=detail)


def _record(*, now: datetime, up: bool, web_ok: bool, work_ok: bool | None, detail: str) -> AvailabilitySample:
    previous = AvailabilitySample.objects.filter(taken_at__lt=now).aggregate(last=Max("taken_at"))["last"]
    gap = (now - previous).total_seconds() if previous else PROBE_SECONDS
    if gap > PROBE_GAP_SECONDS:  # nothing probed in between: that stretch was down
        AvailabilitySample.objects.create(
            taken_at=now - timedelta(seconds=PROBE_SECONDS),
            seconds=gap - PROBE_SECONDS,
            up=False,
            web_ok=False,
            work_ok=None,
            detail=f"no probe ran for {gap:.0f} s",
        )
        gap = PROBE_SECONDS
    return AvailabilitySample.objects.create(
        taken_at=now, seconds=gap, up=up, web_ok=web_ok, work_ok=work_ok, detail=detail[:2000]
    )


# --- Reading it back -----------------------------------------------------------------------------


def availability(*, window: timedelta, name: str = "", now: datetime | None = None) -> Availability:
    """Up time over all time in the window, counting the open stretch since the last probe."""
    now = now or timezone.now()
    samples = AvailabilitySample.objects.filter(taken_at__gt=now - window, taken_at__lte=now)
    totals = samples.aggregate(
        total=Sum("seconds", default=0.0), up=Sum("seconds", filter=Q(up=True), default=0.0), last=Max("taken_at")
    )
    total, up = float(totals["total"]), float(totals["up"])
    last = totals["last"] or AvailabilitySample.objects.filter(taken_at__lte=now).aggregate(m=Max("taken_at"))["m"]
    if last is not None:
        silent = (now - last).total_seconds()
        if silent > PROBE_GAP_SECONDS:  # probes stopped: the time since counts as down, as it will be recorded
            total += min(silent, window.total_seconds())
    if total <= 0:
        return Availability(window=name, ratio=None, up_seconds=0.0, total_seconds=0.0)
    return Availability(window=name, ratio=min(1.0, up / total), up_seconds=up, total_seconds=total)


def availability_summary(*, now: datetime | None = None) -> dict[str, object]:
    """Availability and error budget over 1, 7 and 30 days, the target, and the latest probe."""
    now = now or timezone.now()
    latest = AvailabilitySample.objects.first()
    first = AvailabilitySample.objects.aggregate(first=Min("taken_at"))["first"]
    return {
        "slo_target_percent": settings.SLO_TARGET,
        "measured_since": first.isoformat() if first else None,
        "windows": [availability(window=span, name=name, now=now).as_dict() for name, span in WINDOWS.items()],
        "burn_rates": {name: burn_rate(window=span, now=now) for name, span in BURN_WINDOWS.items()},
        "latest": None
        if latest is None
        else {
            "taken_at": latest.taken_at.isoformat(),
            "up": latest.up,
            "web_ok": latest.web_ok,
            "work_ok": latest.work_ok,
            "detail": latest.detail,
        },
    }


# Windows of the multiwindow, multi-burn-rate alerts (Google SRE workbook, "Alerting on SLOs").
BURN_WINDOWS = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
}


def burn_rate(*, window: timedelta, now: datetime | None = None) -> float | None:
    """How many times faster than sustainable the error budget burns over `window` (1 = exactly on budget)."""
    measured = availability(window=window, now=now)
    if measured.ratio is None:
        return None
    allowed = 1 - settings.SLO_TARGET / 100
    return round((1 - measured.ratio) / allowed, 2) if allowed > 0 else None
