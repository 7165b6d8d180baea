"""Rollups of finished generations: per minute, per hour and all time, per owner, provider and model.

The only writer of `GenerationRollup`. A scheduled task (every minute) re-aggregates the
minutes since a few minutes before its watermark from the generations that finished in them,
replaces those minute rows, and adds the difference to the hour and all-time rows. Running it
twice, or after a crash, gives the same rows: it is idempotent. Reads (`generation.stats`) add
the few generations that finished after the watermark, so figures are live.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from generation.models import (
    PROVIDER_LATENCY_BUCKETS_MS,
    ROLLUP_BUCKET_FIELDS,
    Batch,
    Generation,
    GenerationRollup,
    GenerationStatus,
    RollupResolution,
    RollupState,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# Minutes re-aggregated behind the watermark: a generation whose transaction committed late still counts.
OVERLAP = timedelta(minutes=5)
# One run rolls up at most this much: a first run over a long history catches up a week a minute.
MAX_SPAN = timedelta(days=7)
MINUTE_RETENTION = timedelta(days=2)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RATE_LIMITED = "rate_limited"
COUNT_FIELDS = (
    "succeeded", "failed", "cancelled", "rate_limited", "retries", "latency_count", "latency_ms_sum", "cached",
)  # fmt: skip
SUMMED_FIELDS = (*COUNT_FIELDS, *ROLLUP_BUCKET_FIELDS, "cost_usd", "saved_usd")
FINISHED_FIELDS = (
    "finished_at", "batch_id", "provider", "model", "status", "error_code", "attempts",
    "provider_latency_ms", "cost_usd", "cached", "cache_saved_usd",
)  # fmt: skip
CHUNK = 2000

Key = tuple[datetime, int, str, str]  # (start, owner id, provider, model)


def floor(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, tz=UTC)


@dataclass
class Tally:
    """Counts of finished generations in one group; added and subtracted like numbers."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_FIELDS, 0))
    buckets: list[int] = field(default_factory=lambda: [0] * len(ROLLUP_BUCKET_FIELDS))
    cost_usd: Decimal = Decimal(0)
    errors: dict[str, int] = field(default_factory=dict)
    # What the result cache saved: the provider calls its hits did not make.
    saved_usd: Decimal = Decimal(0)

    def add_generation(
        self,
        status: str,
        code: str,
        attempts: int,
        latency: int | None,
        cost: Any,
        cached: bool = False,
        saved: Any = None,
    ) -> None:
        if status == GenerationStatus.SUCCEEDED:
            self.counts["succeeded"] += 1
            self.cost_usd += cost or 0
            if cached:
                self.counts["cached"] += 1
                self.saved_usd += saved or 0
        elif status == GenerationStatus.FAILED:
            self.counts["failed"] += 1
            self.errors[code or "unknown"] = self.errors.get(code or "unknown", 0) + 1
        elif status == GenerationStatus.CANCELLED:
            self.counts["cancelled"] += 1
        self.counts["rate_limited"] += code == RATE_LIMITED
        self.counts["retries"] += max(0, attempts - 1)
        if latency is not None:
            self.counts["latency_count"] += 1
            self.counts["latency_ms_sum"] += latency
            self.buckets[bisect.bisect_left(PROVIDER_LATENCY_BUCKETS_MS, latency)] += 1

    def merge(self, other: Tally, sign: int = 1) -> None:
        for name in COUNT_FIELDS:
            self.counts[name] += sign * other.counts[name]
        self.buckets = [a + sign * b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.cost_usd += sign * other.cost_usd
        self.saved_usd += sign * other.saved_usd
        for code, n in other.errors.items():
            self.errors[code] = self.errors.get(code, 0) + sign * n
        self.errors = {code: n for code, n in self.errors.items() if n}

    @property
    def finished(self) -> int:
        return self.counts["succeeded"] + self.counts["failed"]

    @property
    def cache_hit_rate(self) -> float | None:
        """Share of the images made that came from the result cache; None before any image."""
        succeeded = self.counts["succeeded"]
        return self.counts["cached"] / succeeded if succeeded else None

    @classmethod
    def of_row(cls, row: GenerationRollup) -> Tally:
        return cls.of_values({name: getattr(row, name) for name in SUMMED_FIELDS}, errors=row.errors)

    @classmethod
    def of_values(cls, values: dict[str, Any], errors: dict[str, int] | None = None) -> Tally:
        """From a row's fields, or from `.values(...).annotate(**SUMS)` totals over many rows."""
        return cls(
            counts={name: int(values[name] or 0) for name in COUNT_FIELDS},
            buckets=[int(values[name] or 0) for name in ROLLUP_BUCKET_FIELDS],
            cost_usd=Decimal(values["cost_usd"] or 0),
            errors=dict(errors or {}),
            saved_usd=Decimal(values["saved_usd"] or 0),
        )

    def fields(self) -> dict[str, Any]:
        return {
            **self.counts,
            **dict(zip(ROLLUP_BUCKET_FIELDS, self.buckets, strict=True)),
            "cost_usd": self.cost_usd,
            "saved_usd": self.saved_usd,
            "errors": self.errors,
        }


def tally_finished(rows: Iterable[tuple[Any, ...]], step: timedelta | None) -> dict[Key, Tally]:
    """Group `FINISHED_FIELDS` rows by (start of their `step`, owner, provider, model); all time if no step."""
    tallies: dict[Key, Tally] = defaultdict(Tally)
    for finished_at, owner_id, provider, model, status, code, attempts, latency, cost, cached, saved in rows:
        start = floor(finished_at, step) if step else EPOCH
        tallies[(start, owner_id, provider, model)].add_generation(status, code, attempts, latency, cost, cached, saved)
    return tallies


def finished_between(start: datetime, end: datetime | None = None) -> Iterator[tuple[Any, ...]]:
    """Generations that finished in [start, end), as `FINISHED_FIELDS` with the owner id for the batch.

    One table, one condition: the finished_at index is the only way in. (Joining the batches to get
    their owners lets a planner that guesses the range to be large walk every batch instead.)
    """
    rows = Generation.objects.filter(finished_at__gte=start)
    if end is not None:
        rows = rows.filter(finished_at__lt=end)
    owners: dict[Any, int] = {}
    chunk: list[tuple[Any, ...]] = []
    fields = rows.values_list(*FINISHED_FIELDS).order_by()
    # Usually a few rows (the minute not rolled up yet, read by every usage figure): one plain read.
    # Only a longer range is streamed (on PostgreSQL a server-side cursor: three round trips more).
    head = list(fields[: CHUNK + 1])
    for row in head if len(head) <= CHUNK else fields.iterator(chunk_size=CHUNK):
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield from _with_owners(chunk, owners)
            chunk = []
    yield from _with_owners(chunk, owners)


def _with_owners(rows: list[tuple[Any, ...]], owners: dict[Any, int]) -> Iterator[tuple[Any, ...]]:
    missing = {row[1] for row in rows} - owners.keys()
    if missing:
        owners.update(Batch.objects.filter(pk__in=missing).values_list("id", "owner_id"))
    for row in rows:
        yield (row[0], owners[row[1]], *row[2:])


def rollup_advance(*, now: datetime | None = None) -> dict[str, Any]:
    """Bring the rollups up to the last complete minute; safe to run twice or concurrently."""
    end = floor(now or timezone.now(), MINUTE)
    with transaction.atomic():
        RollupState.objects.bulk_create([RollupState(id=1)], ignore_conflicts=True)
        state = RollupState.objects.select_for_update().get(id=1)
        start = _resume_from(state, end)
        if start is None or start >= end:
            return {"minutes": 0, "rolled_up_to": state.rolled_up_to}
        stop = min(end, start + MAX_SPAN)
        fresh = tally_finished(finished_between(start, stop), MINUTE)
        stale_rows = GenerationRollup.objects.filter(
            resolution=RollupResolution.MINUTE, start__gte=start, start__lt=stop
        )
        stale = {(r.start, r.owner_id, r.provider, r.model): Tally.of_row(r) for r in stale_rows}
        stale_rows.delete()
        GenerationRollup.objects.bulk_create(
            [_row(RollupResolution.MINUTE, key, tally) for key, tally in fresh.items()], batch_size=500
        )
        _apply_differences(fresh, stale)
        GenerationRollup.objects.filter(resolution=RollupResolution.MINUTE, start__lt=end - MINUTE_RETENTION).delete()
        state.rolled_up_to = stop
        state.save(update_fields=["rolled_up_to"])
    return {"minutes": int((stop - start) / MINUTE), "groups": len(fresh), "rolled_up_to": stop}


def _resume_from(state: RollupState, end: datetime) -> datetime | None:
    if state.rolled_up_to is not None:
        return state.rolled_up_to - OVERLAP
    oldest = Generation.objects.filter(finished_at__isnull=False).aggregate(oldest=Min("finished_at"))["oldest"]
    if oldest is None:
        state.rolled_up_to = end - OVERLAP
        state.save(update_fields=["rolled_up_to"])
        return None
    return floor(oldest, MINUTE)


def _apply_differences(fresh: dict[Key, Tally], stale: dict[Key, Tally]) -> None:
    """Add what changed in the re-aggregated minutes to their hour rows and to the all-time rows."""
    changes: dict[tuple[str, Key], Tally] = defaultdict(Tally)
    for sign, tallies in ((1, fresh), (-1, stale)):
        for (start, owner_id, provider, model), tally in tallies.items():
            changes[(RollupResolution.HOUR, (floor(start, HOUR), owner_id, provider, model))].merge(tally, sign)
            changes[(RollupResolution.TOTAL, (EPOCH, owner_id, provider, model))].merge(tally, sign)
    for (resolution, key), change in changes.items():
        if not any(change.counts.values()) and not change.cost_usd and not any(change.buckets) and not change.saved_usd:
            continue
        start, owner_id, provider, model = key
        row, _created = GenerationRollup.objects.get_or_create(
            resolution=resolution, start=start, owner_id=owner_id, provider=provider, model=model
        )
        total = Tally.of_row(row)
        total.merge(change)
        for name, value in total.fields().items():
            setattr(row, name, value)
        row.save()


def _row(resolution: str, key: Key, tally: Tally) -> GenerationRollup:
    start, owner_id, provider, model = key
    return GenerationRollup(
        resolution=resolution, start=start, owner_id=owner_id, provider=provider, model=model, **tally.fields()
    )
