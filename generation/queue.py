"""Putting generations on the django-q2 queue, and the sweeper that repairs what a dead worker left."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from generation.models import Generation, GenerationStatus

logger = logging.getLogger(__name__)

RUN_TASK = "generation.tasks.run_generation"


def enqueue_generations(ids: Iterable[uuid.UUID], *, batch_id: uuid.UUID | None = None) -> None:
    """Queue one task per generation. Safe to repeat: a task whose generation is taken does nothing.

    With `batch_id` the tasks carry it as their django-q group, so task logs name the batch
    without a lookup.
    """
    broker = get_broker()
    group = {"group": str(batch_id)} if batch_id else {}
    for generation_id in ids:
        # The Generation row records every outcome, so django-q keeps only failed task results.
        name = f"generation-{generation_id}"
        async_task(RUN_TASK, str(generation_id), broker=broker, task_name=name, save=False, **group)


def sweep_stale_generations() -> dict[str, int]:
    """Hand on work whose worker died and re-queue work whose task the broker lost.

    The database, not the broker, says what is left to do: a running generation whose lease
    expired is pending again (or failed, once out of attempts), and a pending generation that
    has waited too long while the broker's queue is empty is enqueued again.
    """
    from generation.runner import attempts_allowed
    from generation.services import batch_refresh

    now = timezone.now()
    expired = Generation.objects.filter(status=GenerationStatus.RUNNING, lease_expires_at__lt=now)
    exhausted = expired.filter(attempts__gte=attempts_allowed())
    touched_batches = set(expired.values_list("batch_id", flat=True))
    failed = exhausted.update(
        status=GenerationStatus.FAILED,
        error_code="worker_lost",
        error_message="The worker running this image stopped and no attempts are left.",
        lease_expires_at=None,
        finished_at=now,
    )
    stale_running = list(expired.values_list("id", flat=True))
    Generation.objects.filter(id__in=stale_running).update(
        status=GenerationStatus.PENDING, lease_expires_at=None, enqueued_at=now
    )
    lost = _lost_pending(now)
    due = _due_retries(now)
    Generation.objects.filter(id__in=[*lost, *due]).update(enqueued_at=now)
    enqueue_generations([*stale_running, *lost, *due])
    for batch_id in touched_batches:
        batch_refresh(batch_id=batch_id)
    result = {"failed": failed, "redelivered": len(stale_running), "requeued": len(lost), "retried": len(due)}
    if any(result.values()):
        logger.warning("Sweeper repaired generations: %s", result)
    return result


def _lost_pending(now: datetime) -> list[uuid.UUID]:
    if queue_size() > 0:
        return []  # the queue still holds work; pending rows are simply waiting their turn
    cutoff = now - timedelta(seconds=settings.GENERATION_REQUEUE_AFTER_SECONDS)
    pending = Generation.objects.filter(status=GenerationStatus.PENDING, enqueued_at__lt=cutoff).exclude(
        not_before__gt=now
    )
    return list(pending.filter(batch__cancel_requested_at__isnull=True).values_list("id", flat=True)[:1000])


def _due_retries(now: datetime) -> list[uuid.UUID]:
    """Retries parked for a long backoff (no task queued for them) whose time has come."""
    parked = Generation.objects.filter(status=GenerationStatus.PENDING, enqueued_at__isnull=True)
    due = parked.filter(Q(not_before__isnull=True) | Q(not_before__lte=now), batch__cancel_requested_at__isnull=True)
    return list(due.values_list("id", flat=True)[:1000])


def queue_size() -> int:
    """Tasks waiting in the broker (the ORM broker also counts tasks leased to a worker)."""
    broker = get_broker()
    size = broker.queue_size() or 0
    lock_size = getattr(broker, "lock_size", None)
    return size + (lock_size() or 0 if lock_size else 0)


def next_lease() -> datetime:
    return timezone.now() + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
