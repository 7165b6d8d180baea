"""What other apps may know about generation: rollups, usage counters, queue and batch figures.

Monitoring reads generation only through this module, never its tables. Every read here
costs what its time window or its answer holds, not the size of the history: finished
images come from `GenerationRollup` (plus the few that finished since the rollup's
watermark), batches from the `created_at` index, the queue from the status index.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, Min, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation.comparisons import configuration_summaries
from generation.models import (
    ACTIVE_BATCH_STATUSES,
    PROVIDER_LATENCY_BUCKETS_MS,
    ROLLUP_BUCKET_FIELDS,
    Batch,
    Generation,
    GenerationRollup,
    GenerationStatus,
    RollupResolution,
    RollupState,
)
from generation.rollups import (
    EPOCH,
    HOUR,
    MINUTE,
    SUMMED_FIELDS,
    Tally,
    finished_between,
    floor,
    tally_finished,
)

LATENCY_BUCKETS_MS = PROVIDER_LATENCY_BUCKETS_MS
BUCKET_FIELDS = ROLLUP_BUCKET_FIELDS


@dataclass(frozen=True)
class FinishedGroup:
    """Images that finished in one slot (minute, hour, or all time) for one owner, provider and model."""

    start: datetime
    owner_id: int
    provider: str
    model: str
    tally: Tally

    @property
    def counts(self) -> dict[str, int]:
        return self.tally.counts


def _watermark() -> datetime:
    state = RollupState.objects.filter(id=1).values_list("rolled_up_to", flat=True).first()
    return state or EPOCH


def _tail(since: datetime, step: timedelta | None) -> Iterable[FinishedGroup]:
    """What finished after the rollups' watermark (a minute or two of work), grouped like the rollups."""
    tallies = tally_finished(finished_between(max(since, _watermark())), step)
    for (start, owner_id, provider, model), tally in tallies.items():
        yield FinishedGroup(start, owner_id, provider, model, tally)


def _summed(rows: QuerySet[GenerationRollup], *keys: str) -> Iterable[dict[str, Any]]:
    """Rollup rows added up in the database per `keys`: one row per group, whatever the range."""
    return rows.order_by().values(*keys).annotate(**{name: Sum(name) for name in SUMMED_FIELDS})


def _rollups(since: datetime, hourly: bool) -> QuerySet[GenerationRollup]:
    # Rows hold what finished before the watermark (an hour row, the rolled-up part of its hour);
    # the tail (`_tail`) adds the rest.
    resolution, step = (RollupResolution.HOUR, HOUR) if hourly else (RollupResolution.MINUTE, MINUTE)
    return GenerationRollup.objects.filter(resolution=resolution, start__gte=floor(since, step))


class FinishedWindow:
    """Finished images since a moment: rollup rows summed in the database, plus the tail, read once.

    Per-minute rollups for ranges within the last day, hourly ones beyond; one object serves every
    figure a dashboard draws for that range.
    """

    def __init__(self, since: datetime, *, hourly: bool | None = None) -> None:
        self.since = since
        self.hourly = timezone.now() - since > timedelta(days=1, minutes=5) if hourly is None else hourly
        self.step = HOUR if self.hourly else MINUTE
        self.rows = _rollups(since, self.hourly)
        self._tail_rows = list(finished_between(max(since, _watermark())))

    def _tail(self, step: timedelta | None) -> Iterable[FinishedGroup]:
        for (start, owner_id, provider, model), tally in tally_finished(self._tail_rows, step).items():
            yield FinishedGroup(start, owner_id, provider, model, tally)

    def by_slot(self) -> list[FinishedGroup]:
        """Per minute (or hour), provider and model."""
        groups = [
            FinishedGroup(row["start"], 0, row["provider"], row["model"], Tally.of_values(row))
            for row in _summed(self.rows, "start", "provider", "model")
        ]
        return groups + [FinishedGroup(g.start, 0, g.provider, g.model, g.tally) for g in self._tail(self.step)]

    def by_model(self) -> dict[tuple[str, str], Tally]:
        """Per provider and model, with failures by error code."""
        by_model: dict[tuple[str, str], Tally] = defaultdict(Tally)
        for row in _summed(self.rows, "provider", "model"):
            by_model[(row["provider"], row["model"])].merge(Tally.of_values(row))
        for provider, model, errors in self.rows.filter(failed__gt=0).values_list("provider", "model", "errors"):
            by_model[(provider, model)].merge(Tally(errors=errors))
        for group in self._tail(None):
            by_model[(group.provider, group.model)].merge(group.tally)
        return dict(by_model)

    def by_provider_and_owner(self) -> dict[tuple[str, int], Tally]:
        """Per provider and user (how many users a provider's failures touch)."""
        groups: dict[tuple[str, int], Tally] = defaultdict(Tally)
        for row in _summed(self.rows, "provider", "owner_id"):
            groups[(row["provider"], row["owner_id"])].merge(Tally.of_values(row))
        for group in self._tail(None):
            groups[(group.provider, group.owner_id)].merge(group.tally)
        return dict(groups)

    def by_owner(self) -> dict[int, Tally]:
        """Per user."""
        by_owner: dict[int, Tally] = defaultdict(Tally)
        for row in _summed(self.rows, "owner_id"):
            by_owner[row["owner_id"]].merge(Tally.of_values(row))
        for group in self._tail(None):
            by_owner[group.owner_id].merge(group.tally)
        return dict(by_owner)

    def images_per_owner_per_hour(self) -> list[tuple[datetime, int, int]]:
        """(hour, owner id, images made), from the hourly rollups whatever the range."""
        rows = _summed(_rollups(self.since, True).filter(succeeded__gt=0), "start", "owner_id")
        found = [(row["start"], row["owner_id"], int(row["succeeded"])) for row in rows]
        tail = self._tail(HOUR)
        return found + [(g.start, g.owner_id, g.counts["succeeded"]) for g in tail if g.counts["succeeded"]]


def totals_by_model() -> dict[tuple[str, str], Tally]:
    """All-time figures per provider and model (behind the Prometheus counters): one row per user and model."""
    return _all_time(None)


def owner_usage(*, owner_id: int) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """One user's all-time images made and their cost per provider and model, including images
    that just finished: the user's own all-time rollup rows read as they are, plus the tail."""
    usage: dict[tuple[str, str], tuple[int, Decimal]] = {}
    rows = GenerationRollup.objects.filter(resolution=RollupResolution.TOTAL, owner_id=owner_id)
    made = [*rows.values_list("provider", "model", "succeeded", "cost_usd")]
    # The tail is read whole and filtered here (see _all_time).
    made += [
        (g.provider, g.model, g.counts["succeeded"], g.tally.cost_usd)
        for g in _tail(EPOCH, None)
        if g.owner_id == owner_id
    ]
    for provider, model, images, cost in made:
        before_images, before_cost = usage.get((provider, model), (0, Decimal(0)))
        usage[(provider, model)] = (before_images + images, before_cost + Decimal(cost))
    return usage


def _all_time(owner_id: int | None) -> dict[tuple[str, str], Tally]:
    rows = GenerationRollup.objects.filter(resolution=RollupResolution.TOTAL)
    if owner_id is not None:
        rows = rows.filter(owner_id=owner_id)
    by_model: dict[tuple[str, str], Tally] = defaultdict(Tally)
    for row in _summed(rows, "provider", "model"):
        by_model[(row["provider"], row["model"])].merge(Tally.of_values(row))
    for provider, model, errors in rows.filter(failed__gt=0).values_list("provider", "model", "errors"):
        by_model[(provider, model)].merge(Tally(errors=errors))
    # The tail is read whole (the last minute or two of everybody's work, along the finished_at
    # index) and filtered here: asking the database for one owner's tail invites it to walk
    # that owner's whole history instead.
    for group in _tail(EPOCH, None):
        if owner_id is None or group.owner_id == owner_id:
            by_model[(group.provider, group.model)].merge(group.tally)
    return dict(by_model)


def canary_owner_id() -> int | None:
    """The synthetic canary user's id: its batches are probes, not usage, and usage figures skip them."""
    return get_user_model().objects.filter(username=settings.CANARY_USERNAME).values_list("pk", flat=True).first()


def usernames(owner_ids: Iterable[int]) -> dict[int, str]:
    ids = set(owner_ids)
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}


def batches_created(since: datetime) -> list[dict[str, Any]]:
    """Batches created since `since` (their owner, source and parameters), from the created_at index."""
    rows = (
        Batch.objects.filter(created_at__gte=since)
        .exclude(owner__username=settings.CANARY_USERNAME)  # the canary's probes are not usage
        .values_list("owner_id", "owner__username", "source", "parameters")
    )
    return [
        {"owner_id": owner_id, "username": username, "source": source, "parameters": parameters}
        for owner_id, username, source, parameters in rows
    ]


def batch_counts_by_source() -> dict[str, int]:
    """All batches ever created, per source (a count over the batch table, not its images), canary excepted."""
    batches = Batch.objects.exclude(owner__username=settings.CANARY_USERNAME)
    return dict(batches.values_list("source").annotate(n=Count("id")).order_by().values_list("source", "n"))


def queue_counts(*, now: datetime | None = None) -> dict[str, Any]:
    """Images waiting (in open batches not being cancelled) and running, and the age of the oldest waiting one.

    Read batch by batch along (batch, status), from the few open batches: counting or taking the
    minimum over the waiting images themselves made SQLite walk an index over every batch ever made
    (0.1 s at a million images). Images are created with their batch, so the oldest waiting image
    is as old as the oldest open batch that still has one.
    """
    now = now or timezone.now()
    has_waiting = Generation.objects.filter(batch_id=OuterRef("pk"), status=GenerationStatus.PENDING)
    open_batches = Batch.objects.filter(status__in=ACTIVE_BATCH_STATUSES, cancel_requested_at__isnull=True)
    oldest = open_batches.filter(Exists(has_waiting)).aggregate(oldest=Min("created_at"))["oldest"]
    per_batch = has_waiting.order_by().values("batch_id").annotate(n=Count("id")).values("n")
    queued = open_batches.annotate(n=Coalesce(Subquery(per_batch), 0)).aggregate(total=Sum("n"))["total"] or 0
    return {
        "queued": queued,
        "running": Generation.objects.filter(status=GenerationStatus.RUNNING).count(),
        "oldest_queued_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
    }


def table_sizes() -> dict[str, int]:
    """Rows in the batch and generation tables (for backup manifests, not for requests)."""
    return {"batches": Batch.objects.count(), "generations": Generation.objects.count()}


def batch_of_generation(generation_id: uuid.UUID) -> uuid.UUID | None:
    return Generation.objects.filter(id=generation_id).values_list("batch_id", flat=True).first()


def comparison_configurations() -> list[dict[str, Any]]:
    """Every user's A/B comparisons per configuration (provider, model, size), most compared first."""
    return [row.as_dict() for row in configuration_summaries()]
