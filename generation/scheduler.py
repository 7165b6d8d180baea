"""The scheduler: which pending generation a free worker starts next.

The generations table is the queue; the broker only carries work a worker can start now. When
a slot frees up (an image ends, a batch arrives, a node's loop ticks), `dispatch` picks the next
generations under one lock:

- fair share between users: the user with the fewest images in flight goes first, ties to the
  user served longest ago, and nobody goes past MAX_RUNNING_PER_USER;
- within a user, batch priority (high, normal, low), then the oldest batch, then position;
- provider aware: the provider permits are taken here, so a provider at its cap or cooling down
  is skipped (its work waits in the table) and never holds a worker.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, F, Sum
from django.utils import timezone

from generation import lifecycle, limits, result_cache
from generation.models import (
    Batch,
    BatchStatus,
    Generation,
    GenerationStatus,
    ProviderCooldown,
    SchedulerLock,
    WorkerNode,
)
from imagegen.shared_cache import shared_figures

logger = logging.getLogger(__name__)

DEFAULT_SECONDS_PER_IMAGE = 10.0


@dataclass(frozen=True)
class Dispatched:
    generation_id: uuid.UUID
    attempt: int
    batch_id: uuid.UUID


def worker_slots(now: datetime | None = None) -> int:
    """Worker processes of the live nodes, plus SCHEDULER_PREFETCH tasks per worker to hide broker latency."""
    fresh = (now or timezone.now()) - timedelta(seconds=settings.WORKER_DEAD_AFTER_SECONDS)
    nodes = WorkerNode.objects.filter(heartbeat_at__gte=fresh).aggregate(workers=Sum("workers"), nodes=Count("id"))
    if not nodes["nodes"]:
        return 0
    workers = int(nodes["workers"] or 0)
    return workers + math.ceil(workers * settings.SCHEDULER_PREFETCH)


def dispatch(*, slots: int | None = None) -> list[Dispatched]:
    """Claim the next generations for `slots` free worker slots (default: the live nodes' free slots).

    The caller puts what is returned on the broker once this transaction has committed.
    """
    now = timezone.now()
    capacity = worker_slots(now) if slots is None else 0
    if slots is None and capacity <= Generation.objects.filter(status=GenerationStatus.RUNNING).count():
        return []  # every worker busy: a cheap read, no lock taken
    # The lock row must exist before anyone locks it: two first dispatchers creating it inside
    # their transactions would not be serialised by it (and deadlock on PostgreSQL).
    SchedulerLock.objects.get_or_create(pk=1)
    with transaction.atomic():
        # One dispatcher at a time, on every database: PostgreSQL row lock, SQLite write lock.
        # The few queries below are all the time the lock is held.
        lock = SchedulerLock.objects.select_for_update().get(pk=1)
        state = _Round(now)
        free = (capacity - state.running) if slots is None else slots
        if free <= 0:
            return []
        served = dict(lock.served or {})
        picked = _pick(state, free, served)
        if picked:
            SchedulerLock.objects.filter(pk=1).update(dispatched_at=now, served=served)
    return picked


class _Round:
    """The state of one dispatch round: who is in flight, who was served last, what is blocked."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        in_flight = (
            Generation.objects.filter(status=GenerationStatus.RUNNING)
            .order_by()
            .values_list("batch__owner_id")
            .annotate(n=Count("id"))
        )
        self.in_flight: dict[int, int] = defaultdict(int, {owner: n for owner, n in in_flight})
        self.running = sum(self.in_flight.values())
        self.blocked: set[str] = set(ProviderCooldown.objects.filter(until__gt=now).values_list("provider", flat=True))
        batches = Batch.objects.schedulable().order_by("-priority", "created_at")
        self.queues: dict[int, list[uuid.UUID]] = defaultdict(list)
        for batch_id, owner_id in batches.values_list("id", "owner_id")[: settings.SCHEDULER_MAX_BATCHES]:
            self.queues[owner_id].append(batch_id)

    def next_user(self, served: dict[str, float]) -> int | None:
        cap = settings.MAX_RUNNING_PER_USER or math.inf
        users = [user for user, batches in self.queues.items() if batches and self.in_flight[user] < cap]
        if not users:
            return None
        return min(users, key=lambda user: (self.in_flight[user], served.get(str(user), 0.0)))


def _pick(state: _Round, free: int, served: dict[str, float]) -> list[Dispatched]:
    """Fill `free` slots; `served` (user -> when last served) is updated and trimmed in place."""
    now = state.now
    for key in [key for key in served if int(key) not in state.queues]:
        del served[key]
    picked: list[Dispatched] = []
    while len(picked) < free:
        owner = state.next_user(served)
        if owner is None:
            break
        dispatched = _next_of_user(state, owner)
        if dispatched is None:
            state.queues.pop(owner)
            continue
        picked.append(dispatched)
        state.in_flight[owner] += 1
        served[str(owner)] = now.timestamp() + len(picked)
    return picked


def _next_of_user(state: _Round, user: int) -> Dispatched | None:
    """The user's next startable generation, with its provider permit taken; None when there is none."""
    batches = state.queues[user]
    while batches:
        batch_id = batches[0]
        candidate = (
            Generation.objects.due(state.now)
            .filter(batch_id=batch_id, status=GenerationStatus.PENDING)
            .exclude(provider__in=state.blocked)
            .exclude(cache_key__in=result_cache.keys_in_flight(user))  # its twin renders now: copy it after
            .order_by("position")
            .values_list("id", "provider", "attempts", "cache_key", "provider_index")
            .first()
        )
        if candidate is None:
            batches.pop(0)  # nothing startable in this batch now: waiting retries or blocked providers
            continue
        generation_id, provider, attempts, key, provider_index = candidate
        if provider_index == 0 and result_cache.hit_exists(key):
            # A cache hit copies a stored image: no provider permit, no provider rate limit.
            attempt = lifecycle.generation_dispatch(generation_id=generation_id, attempts=attempts, now=state.now)
            if attempt is None:
                continue
            return Dispatched(generation_id=generation_id, attempt=attempt, batch_id=batch_id)
        permit = lifecycle.holder(generation_id, attempts + 1)
        if not limits.provider_slot_acquire(provider=provider, holder=permit, cooldown_checked=True).granted:
            state.blocked.add(provider)  # at its cap or cooling down: skip it, not wait on it
            continue
        attempt = lifecycle.generation_dispatch(generation_id=generation_id, attempts=attempts, now=state.now)
        if attempt is None:
            limits.provider_slot_release(provider=provider, holder=permit)
            continue
        return Dispatched(generation_id=generation_id, attempt=attempt, batch_id=batch_id)
    return None


def next_due_retry() -> datetime | None:
    """When the earliest waiting retry of a schedulable batch becomes due."""
    waiting = Generation.objects.filter(
        status=GenerationStatus.PENDING,
        not_before__isnull=False,
        batch__in=Batch.objects.schedulable(),
    )
    return waiting.order_by("not_before").values_list("not_before", flat=True).first()


# --- where a batch stands in the queue -----------------------------------------------------------


@dataclass(frozen=True)
class QueueEstimate:
    queue_position: int | None  # 0 while its images are being made; n = n-th in its owner's line
    eta_seconds: int | None


def estimates(batches: list[Batch]) -> dict[uuid.UUID, QueueEstimate]:
    """Queue position and time left for active batches, from recent provider latency and fair share.

    An estimate, not a promise: it assumes every user with work keeps an equal share of the
    workers (capped by MAX_RUNNING_PER_USER) and that images take as long as the recent ones.
    """
    active = [batch for batch in batches if batch.is_active]
    if not active:
        return {}
    standing = _standing(active)
    share = _share_per_user()
    result = {}
    for batch in active:
        place = standing.get(batch.pk)
        if batch.status == BatchStatus.PAUSED or place is None:
            result[batch.pk] = QueueEstimate(queue_position=None, eta_seconds=None)
            continue
        position, ahead = place
        remaining = batch.total - batch.finished
        eta = None if share == 0 else int((ahead + remaining) * seconds_per_image(batch.provider) / share)
        result[batch.pk] = QueueEstimate(queue_position=position, eta_seconds=eta)
    return result


def _standing(batches: list[Batch]) -> dict[uuid.UUID, tuple[int, int]]:
    """Where each batch stands in its owner's line (dispatch order): (queue position, images ahead of it).

    The position is 0 for a batch that has started, else 1 + the owner's unstarted batches before it.
    One ordered read of the owners' schedulable batches (a line is at most the owner's active-batch
    limit long) and one pass adding up what comes first: the cost is the line, not the page times
    the line.
    """
    wanted = {batch.pk for batch in batches}
    left = F("total") - F("completed") - F("failed") - F("cancelled")
    line = (
        Batch.objects.schedulable()
        .filter(owner_id__in={batch.owner_id for batch in batches})
        .order_by("owner_id", "-priority", "created_at", "id")
        .values_list("id", "owner_id", "status", left)
    )
    standing: dict[uuid.UUID, tuple[int, int]] = {}
    owner, images, waiting = None, 0, 0
    for batch_id, owner_id, status, remaining in line:
        if owner_id != owner:
            owner, images, waiting = owner_id, 0, 0
        running = status == BatchStatus.RUNNING
        if batch_id in wanted:
            standing[batch_id] = (0 if running else 1 + waiting, images)
        images += remaining
        waiting += not running
    return standing


def _share_per_user() -> float:
    slots = worker_slots()
    if slots == 0:
        return 0.0
    users = Batch.objects.schedulable().values("owner_id").distinct().count()
    share = slots / max(1, users)
    return float(min(share, settings.MAX_RUNNING_PER_USER or share))


def seconds_per_image(provider: str) -> float:
    """Mean provider latency of the provider's last images (the last hour), or a default; cached 30 s."""
    return float(shared_figures(f"scheduler:seconds-per-image:{provider}", 30, lambda: _mean_latency(provider)))


def _mean_latency(provider: str) -> float:
    since = timezone.now() - timedelta(hours=1)
    recent = Generation.objects.filter(
        provider=provider, status=GenerationStatus.SUCCEEDED, finished_at__gte=since
    ).order_by("-finished_at")[:50]
    mean = Generation.objects.filter(pk__in=recent.values("pk")).aggregate(ms=Avg("provider_latency_ms"))["ms"]
    return DEFAULT_SECONDS_PER_IMAGE if mean is None else max(0.05, float(mean) / 1000)
