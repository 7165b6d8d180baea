"""Cluster-wide provider limits, enforced atomically in the database across every worker and machine.

Two named limits per provider (settings.PROVIDER_LIMITS, from `<PROVIDER>_MAX_CONCURRENCY` and
`<PROVIDER>_RPM`):

- `concurrency`: requests in flight. N permit rows; a worker holds one for the length of its call.
- `rpm`: requests per minute. N permit rows; each call holds one for 60 s, so no sliding
  minute ever sees more than N calls.

A permit is taken by a conditional UPDATE on a free row (expired `expires_at`), which the
database serialises, so the limits hold for SQLite with several processes and for PostgreSQL
across machines. A provider's 429 sets a cooldown that every worker honours.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from generation.models import PermitKind, ProviderCooldown, ProviderPermit

RPM_WINDOW = timedelta(seconds=60)
PERMIT_BACKSTOP_SECONDS = 60


@dataclass(frozen=True)
class SlotOutcome:
    granted: bool
    retry_at: datetime | None = None  # when a slot is known to free up (rpm window, cooldown)


def limit_for(provider: str, kind: str) -> int:
    return int(settings.PROVIDER_LIMITS.get(provider, {}).get(kind, 0) or 0)


def provider_slot_acquire(*, provider: str, holder: str, cooldown_checked: bool = False) -> SlotOutcome:
    """Take a concurrency permit and an rpm permit for one call, or neither; never waits.

    `cooldown_checked`: the caller already knows the provider is not cooling down after a 429.

    The scheduler takes the permits when it hands a generation to a worker, so no worker sits
    waiting for a slot: a provider at its cap or cooling down is skipped, not waited on.
    """
    now = timezone.now()
    cooldown = None if cooldown_checked else provider_cooldown_until(provider=provider, now=now)
    if cooldown is not None:
        return SlotOutcome(False, retry_at=cooldown)
    # Liveness, not this backstop, frees the permit of a dead worker (generation.lifecycle).
    backstop = now + timedelta(seconds=settings.GENERATION_TASK_TIMEOUT + PERMIT_BACKSTOP_SECONDS)
    if not _take(provider, PermitKind.CONCURRENCY, holder, now, backstop):
        return SlotOutcome(False)
    if not _take(provider, PermitKind.RPM, holder, now, now + RPM_WINDOW):
        provider_slot_release(provider=provider, holder=holder)
        return SlotOutcome(False, retry_at=_next_free(provider, PermitKind.RPM))
    return SlotOutcome(True)


def provider_slot_release(*, provider: str, holder: str) -> None:
    """Give back the concurrency permit (rpm permits run out their minute on their own)."""
    provider_slots_release(holders=[holder], provider=provider)


def provider_slots_release(*, holders: list[str], provider: str | None = None) -> int:
    """Give back the concurrency permits of these holders (finished, cancelled or dead attempts)."""
    permits = ProviderPermit.objects.filter(kind=PermitKind.CONCURRENCY, holder__in=holders)
    if provider is not None:
        permits = permits.filter(provider=provider)
    return permits.update(holder="", expires_at=timezone.now())


def provider_slot_held(*, provider: str, holder: str) -> bool:
    """Whether `holder` may call `provider` now: it holds a concurrency permit, or the provider has no limits."""
    if limit_for(provider, PermitKind.CONCURRENCY) <= 0 and limit_for(provider, PermitKind.RPM) <= 0:
        return True
    kind = PermitKind.CONCURRENCY if limit_for(provider, PermitKind.CONCURRENCY) > 0 else PermitKind.RPM
    return ProviderPermit.objects.filter(provider=provider, kind=kind, holder=holder).exists()


def provider_is_blocked(*, provider: str, now: datetime | None = None) -> bool:
    """Cooling down after a 429: the scheduler skips it until then."""
    return provider_cooldown_until(provider=provider, now=now) is not None


def provider_cooldown_set(*, provider: str, seconds: float, reason: str = "") -> datetime:
    """Hold every call to `provider` for exactly `seconds` (a longer cooldown already set stays)."""
    until = timezone.now() + timedelta(seconds=seconds)
    ProviderCooldown.objects.get_or_create(provider=provider, defaults={"until": until, "reason": reason[:200]})
    ProviderCooldown.objects.filter(provider=provider, until__lt=until).update(until=until, reason=reason[:200])
    return until


def provider_cooldown_until(*, provider: str, now: datetime | None = None) -> datetime | None:
    now = now or timezone.now()
    return ProviderCooldown.objects.filter(provider=provider, until__gt=now).values_list("until", flat=True).first()


def provider_in_flight(*, provider: str) -> int:
    now = timezone.now()
    return ProviderPermit.objects.filter(provider=provider, kind=PermitKind.CONCURRENCY, expires_at__gt=now).count()


def _take(provider: str, kind: str, holder: str, now: datetime, expires: datetime) -> bool:
    limit = limit_for(provider, kind)
    if limit <= 0:
        return True
    free = ProviderPermit.objects.filter(provider=provider, kind=kind, index__lt=limit, expires_at__lte=now)
    candidates = list(free.values_list("pk", flat=True)[:limit])
    if not candidates:  # every permit busy, or the rows for this limit do not exist yet
        _ensure_rows(provider, kind, limit, now)
        candidates = list(free.values_list("pk", flat=True)[:limit])
    random.shuffle(candidates)  # spread workers over the free rows instead of racing for the first
    for pk in candidates:
        if ProviderPermit.objects.filter(pk=pk, expires_at__lte=now).update(holder=holder, expires_at=expires):
            return True
    return False


def _ensure_rows(provider: str, kind: str, limit: int, now: datetime) -> None:
    rows = ProviderPermit.objects.filter(provider=provider, kind=kind, index__lt=limit)
    if rows.count() < limit:
        existing = set(rows.values_list("index", flat=True))
        free = now - RPM_WINDOW
        missing = [
            ProviderPermit(provider=provider, kind=kind, index=i, expires_at=free)
            for i in range(limit)
            if i not in existing
        ]
        ProviderPermit.objects.bulk_create(missing, ignore_conflicts=True)


def _next_free(provider: str, kind: str) -> datetime | None:
    limit = limit_for(provider, kind)
    rows = ProviderPermit.objects.filter(provider=provider, kind=kind, index__lt=limit)
    return rows.aggregate(first=Min("expires_at"))["first"]
