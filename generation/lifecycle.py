"""The one writer of generation and batch state.

Every change of a generation's status goes through a function here: dispatch (claim), start,
success, failure (retry with backoff, 429 wait, fail-over, final failure), spooling an answer that
could not be stored, release of a dead worker's claim, cancel, pause, resume and retry. The batch's
status and counters are derived from its generations in one place, `batch_refresh`.

Each write is a conditional UPDATE fenced by the attempt number: a superseded attempt (its worker
was declared dead and the image handed on) can never overwrite the attempt that holds the row.
"""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation import limits, webhooks
from generation.models import (
    ACTIVE_BATCH_STATUSES,
    FINISHED_GENERATION_STATUSES,
    Batch,
    BatchStatus,
    CollectionItem,
    Generation,
    GenerationStatus,
    SpooledResult,
)
from generation.parameters import BatchParameters
from generation.providers.base import ProviderError

logger = logging.getLogger(__name__)

UNFINISHED = (GenerationStatus.PENDING, GenerationStatus.RUNNING)
# Failures that no later attempt can fix: "retry failed" skips them unless asked to include them.
PERMANENT_ERROR_CODES = frozenset(
    {"content_filtered", "bad_request", "unprocessable", "payload_too_large", "unsupported_size", "invalid_request"}
)
DB_RETRIES = 5

P = ParamSpec("P")
R = TypeVar("R")


def reconnecting(function: Callable[P, R]) -> Callable[P, R]:
    """Retry a write after the database connection dropped, on a fresh connection.

    A worker that lost its connection mid-render must still record what the provider answered;
    inside an outer transaction nothing can be retried, so the error goes up unchanged.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(DB_RETRIES):
            try:
                return function(*args, **kwargs)
            except (OperationalError, InterfaceError):
                if connection.in_atomic_block or attempt == DB_RETRIES - 1:
                    raise
                logger.warning("Database write %s failed; reconnecting (try %d)", function.__name__, attempt + 1)
                connection.close()
                time.sleep(min(5.0, 0.2 * 2**attempt))
        raise AssertionError("unreachable")

    return wrapper


# --- the attempt budget ------------------------------------------------------------------------


def attempts_allowed_expression() -> Any:
    """Attempts a generation may use: GENERATION_MAX_ATTEMPTS on each provider it fails over to."""
    return (F("provider_index") + 1) * settings.GENERATION_MAX_ATTEMPTS


def attempts_left(generation: Generation) -> int:
    return (generation.provider_index + 1) * settings.GENERATION_MAX_ATTEMPTS - generation.attempts


def holder(generation_id: uuid.UUID, attempt: int) -> str:
    """Who holds a provider permit: one attempt of one generation."""
    return f"{generation_id}:{attempt}"


def still_ours(generation: Generation) -> Q:
    """Fencing: only the attempt that holds the row may change it."""
    return Q(pk=generation.pk, status=GenerationStatus.RUNNING, attempts=generation.attempts)


# --- dispatch and start --------------------------------------------------------------------------


def generation_dispatch(*, generation_id: uuid.UUID, attempts: int, now: datetime) -> int | None:
    """Claim a due pending generation for a worker; the new attempt number, or None if it changed.

    Called by the scheduler inside its transaction, after it took the provider permit; `attempts`
    is what the scheduler read, so the claim also fences against any change since.
    """
    claimed = (
        Generation.objects.due(now)
        .filter(pk=generation_id, status=GenerationStatus.PENDING, attempts=attempts)
        .filter(attempts__lt=attempts_allowed_expression())
        .update(
            status=GenerationStatus.RUNNING,
            attempts=F("attempts") + 1,
            worker="",
            lease_expires_at=now + timedelta(seconds=settings.SCHEDULER_DISPATCH_LEASE_SECONDS),
            not_before=None,
            started_at=Coalesce(F("started_at"), now),
        )
    )
    return attempts + 1 if claimed else None


@reconnecting
def generation_start(*, generation_id: uuid.UUID, attempt: int, worker: str) -> Generation | None:
    """A worker takes up a dispatched attempt; None when that attempt was handed on or finished."""
    now = timezone.now()
    backstop = now + timedelta(seconds=settings.GENERATION_TASK_TIMEOUT + limits.PERMIT_BACKSTOP_SECONDS)
    started = Generation.objects.filter(
        pk=generation_id, status=GenerationStatus.RUNNING, attempts=attempt, worker=""
    ).update(worker=worker[:100], lease_expires_at=backstop)
    if not started:
        return None
    return Generation.objects.select_related("batch").get(pk=generation_id)


# --- outcomes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Success:
    """What a succeeded attempt stored and what it cost."""

    image_name: str
    thumbnail_name: str
    content_hash: str
    seed: int
    metadata: dict[str, Any]
    latency_ms: int | None
    quality: str
    cost: Decimal | None
    # Copied from an identical earlier image (generation.result_cache): no provider call, cost 0.
    cached: bool = False
    saved_usd: Decimal | None = None


@reconnecting
def generation_succeed(*, generation: Generation, success: Success, from_spool: bool = False) -> bool:
    """Record the image; False when this attempt no longer holds the row (the caller drops its files)."""
    with transaction.atomic():  # one commit: on SQLite every commit queues for the write lock
        finished = _record_success(generation, success)
        if from_spool:
            SpooledResult.objects.filter(generation_id=generation.pk).delete()
        _release_permit(generation)
    if not finished:
        logger.warning("Generation %s was taken over by another attempt; result discarded", generation.pk)
    return bool(finished)


def _record_success(generation: Generation, success: Success) -> int:
    return Generation.objects.filter(still_ours(generation)).update(
        status=GenerationStatus.SUCCEEDED,
        image=success.image_name,
        thumbnail=success.thumbnail_name,
        content_hash=success.content_hash,
        seed=success.seed,
        metadata={**generation.metadata, **success.metadata},
        provider_latency_ms=success.latency_ms,
        quality=success.quality[:30],
        cost_usd=success.cost,
        cached=success.cached,
        cache_saved_usd=success.saved_usd,
        error_code="",
        error_message="",
        error_permanent=False,
        rate_limited_since=None,
        lease_expires_at=None,
        finished_at=timezone.now(),
    )


@reconnecting
def generation_fail(*, generation: Generation, error: ProviderError) -> str:
    """Decide what a failed attempt leads to: cancel, wait out a 429, retry, fail over or fail for good."""
    with transaction.atomic():
        return _fail(generation, error)


def _fail(generation: Generation, error: ProviderError) -> str:
    _release_permit(generation)
    if error.code == "cancelled" or _cancel_requested(generation.batch_id):
        return _finish(generation, GenerationStatus.CANCELLED, code="cancelled", message=error.message)
    if error.code == "rate_limited":
        return _wait_for_rate_limit(generation, error)
    if error.retryable and attempts_left(generation) > 0:
        return _back_to_pending(generation, delay=retry_delay(generation, error), error=error)
    parameters = BatchParameters.from_json(generation.batch.parameters)
    if error.retryable and parameters.fallback(generation.provider_index) is not None:
        return _fail_over(generation, parameters, error)
    return _finish(generation, GenerationStatus.FAILED, code=error.code, message=error.message)


@reconnecting
def generation_spool(
    *, generation: Generation, data: bytes, seed: int | None, metadata: dict[str, Any], latency_ms: int, reason: str
) -> str:
    """Keep a provider's answer that could not be stored; the next attempt stores it without a new call."""
    _release_permit(generation)
    spool, created = SpooledResult.objects.get_or_create(
        generation_id=generation.pk,
        defaults={"data": data, "seed": seed, "metadata": metadata, "latency_ms": latency_ms},
    )
    tries = int(spool.metadata.get("store_tries", 0)) + (0 if created else 1)
    if tries >= settings.STORAGE_MAX_TRIES:
        spool.delete()
        return _finish(generation, GenerationStatus.FAILED, code="storage_unavailable", message=reason)
    if not created:
        SpooledResult.objects.filter(pk=spool.pk).update(metadata={**spool.metadata, "store_tries": tries})
    delay = min(settings.GENERATION_RETRY_MAX_SECONDS, settings.GENERATION_RETRY_BASE_SECONDS * 2**tries)
    error = ProviderError("storage_unavailable", reason, retryable=True)
    # Storing again costs no provider attempt: the answer is already paid for.
    return _back_to_pending(generation, delay=delay, error=error, refund_attempt=True)


@reconnecting
def generation_cache_missed(*, generation: Generation) -> str:
    """A cache hit whose source vanished before the worker copied it: back to pending, no attempt spent.

    It was dispatched without a provider permit, so it must not call the provider now; the next
    dispatch takes a permit like any other image.
    """
    error = ProviderError("cache_miss", "The cached image was deleted; rendering it instead.", retryable=True)
    return _back_to_pending(generation, error=error, refund_attempt=True, until=timezone.now())


def retry_delay(generation: Generation, error: ProviderError) -> float:
    """Exponential backoff with jitter, never shorter than what the provider asked for."""
    attempt = max(1, generation.attempts - generation.provider_index * settings.GENERATION_MAX_ATTEMPTS)
    ceiling = min(settings.GENERATION_RETRY_MAX_SECONDS, settings.GENERATION_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    backoff = random.uniform(0.5, 1.0) * ceiling  # noqa: S311 - jitter, not cryptography
    return max(backoff, error.retry_after or 0.0)


def _wait_for_rate_limit(generation: Generation, error: ProviderError) -> str:
    """A 429 spends no attempt: the provider pauses for exactly Retry-After, within a time budget."""
    now = timezone.now()
    waiting_since = generation.rate_limited_since or now
    if (now - waiting_since).total_seconds() > settings.GENERATION_RATE_LIMIT_BUDGET_SECONDS:
        parameters = BatchParameters.from_json(generation.batch.parameters)
        if parameters.fallback(generation.provider_index) is not None:
            return _fail_over(generation, parameters, error)
        return _finish(generation, GenerationStatus.FAILED, code=error.code, message=error.message)
    seconds = error.retry_after if error.retry_after is not None else settings.PROVIDER_DEFAULT_COOLDOWN_SECONDS
    until = limits.provider_cooldown_set(provider=generation.provider, seconds=seconds, reason=error.message)
    return _back_to_pending(generation, until=until, error=error, refund_attempt=True, rate_limited_since=waiting_since)


def _back_to_pending(
    generation: Generation,
    *,
    error: ProviderError,
    delay: float = 0.0,
    until: datetime | None = None,
    refund_attempt: bool = False,
    rate_limited_since: datetime | None = None,
) -> str:
    changes: dict[str, Any] = {"attempts": F("attempts") - 1} if refund_attempt else {}
    updated = (
        Generation.objects.filter(still_ours(generation))
        .filter(batch__cancel_requested_at__isnull=True)
        .update(
            status=GenerationStatus.PENDING,
            worker="",
            lease_expires_at=None,
            not_before=until or timezone.now() + timedelta(seconds=delay),
            error_code=error.code[:60],
            error_message=error.message,
            rate_limited_since=rate_limited_since,
            **changes,
        )
    )
    if not updated and _cancel_requested(generation.batch_id):
        return _finish(generation, GenerationStatus.CANCELLED, code="cancelled", message="")  # cancel wins
    return GenerationStatus.PENDING


def _fail_over(generation: Generation, parameters: BatchParameters, error: ProviderError) -> str:
    fallback = parameters.fallback(generation.provider_index)
    assert fallback is not None
    move = {
        "from": f"{generation.provider}:{generation.model}",
        "to": f"{fallback.provider}:{fallback.model}",
        "error_code": error.code,
        "at": timezone.now().isoformat(),
    }
    metadata = {**generation.metadata, "failovers": [*generation.metadata.get("failovers", []), move]}
    logger.info("Generation %s fails over from %s to %s after %s", generation.pk, move["from"], move["to"], error.code)
    updated = (
        Generation.objects.filter(still_ours(generation))
        .filter(batch__cancel_requested_at__isnull=True)
        .update(
            status=GenerationStatus.PENDING,
            provider=fallback.provider,
            model=fallback.model,
            provider_index=generation.provider_index + 1,
            metadata=metadata,
            error_code=error.code[:60],
            error_message=error.message,
            rate_limited_since=None,
            worker="",
            lease_expires_at=None,
            not_before=None,
        )
    )
    if not updated and _cancel_requested(generation.batch_id):
        return _finish(generation, GenerationStatus.CANCELLED, code="cancelled", message="")
    return GenerationStatus.PENDING


def _finish(generation: Generation, status: str, *, code: str, message: str) -> str:
    finished = Generation.objects.filter(still_ours(generation)).update(
        status=status,
        error_code=code[:60],
        error_message=message,
        error_permanent=code in PERMANENT_ERROR_CODES,
        worker="",
        lease_expires_at=None,
        finished_at=timezone.now(),
    )
    if finished and status == GenerationStatus.FAILED:
        logger.warning(
            "Generation %s of batch %s failed for good: %s",
            generation.pk,
            generation.batch_id,
            code,
            extra={"generation_id": str(generation.pk), "batch_id": str(generation.batch_id), "error_code": code},
        )
    return status


def _release_permit(generation: Generation) -> None:
    if limits.limit_for(generation.provider, "concurrency") > 0:  # an unlimited provider holds none
        limits.provider_slots_release(holders=[holder(generation.pk, generation.attempts)])


def _cancel_requested(batch_id: uuid.UUID) -> bool:
    return Batch.objects.filter(pk=batch_id, cancel_requested_at__isnull=False).exists()


# --- dead workers --------------------------------------------------------------------------------


def claims_release(*, generation_ids: Iterable[uuid.UUID], reason: str) -> int:
    """Hand on attempts whose worker is gone: back to pending, or failed once out of attempts.

    Also frees their provider permits at once and removes any file the dead attempt left.
    """
    released = 0
    for generation in Generation.objects.filter(pk__in=list(generation_ids), status=GenerationStatus.RUNNING):
        released += _release_one(generation, reason)
    return released


@reconnecting
def _release_one(generation: Generation, reason: str) -> int:
    fenced = Generation.objects.filter(still_ours(generation), worker=generation.worker)
    if attempts_left(generation) > 0 and not _cancel_requested(generation.batch_id):
        count = fenced.update(status=GenerationStatus.PENDING, worker="", lease_expires_at=None, not_before=None)
    else:
        lost = "worker_lost" if attempts_left(generation) <= 0 else "cancelled"
        count = fenced.update(
            status=GenerationStatus.FAILED if lost == "worker_lost" else GenerationStatus.CANCELLED,
            error_code=lost,
            error_message=reason if lost == "worker_lost" else "",
            worker="",
            lease_expires_at=None,
            finished_at=timezone.now(),
        )
    if count:
        _release_permit(generation)
        _delete_attempt_files(generation)
        logger.warning("Released generation %s (attempt %d): %s", generation.pk, generation.attempts, reason)
    return count


def _delete_attempt_files(generation: Generation) -> None:
    base = attempt_file_base(generation.batch_id, generation.pk, generation.attempts)
    for name in (f"images/{base}.png", f"thumbnails/{base}.webp"):
        try:
            if default_storage.exists(name):
                default_storage.delete(name)
        except OSError:
            logger.warning("Could not remove %s left by a dead attempt", name)


def attempt_file_base(batch_id: uuid.UUID, generation_id: uuid.UUID, attempt: int) -> str:
    # The attempt number keeps a late, superseded attempt from overwriting the winner's file.
    return f"{batch_id}/{generation_id}-{attempt}"


# --- batches -------------------------------------------------------------------------------------


@reconnecting
def batch_refresh(*, batch_id: uuid.UUID) -> Batch:
    """Recount a batch's generations and derive its status, counters and cost: the only place they are set."""
    with transaction.atomic():
        # Count under the batch's row lock: of two workers finishing at once, the later one
        # counts after the earlier one has saved, so a stale count never has the last word.
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        counts = Generation.objects.filter(batch_id=batch_id).aggregate(
            total=Count("id"),
            cost=Sum("cost_usd"),
            deleted=Count("id", filter=Q(deleted_at__isnull=False)),
            **{status.value: Count("id", filter=Q(status=status)) for status in GenerationStatus},
        )
        batch.total = counts["total"]
        batch.completed = counts[GenerationStatus.SUCCEEDED]
        batch.failed = counts[GenerationStatus.FAILED]
        batch.cancelled = counts[GenerationStatus.CANCELLED]
        batch.deleted = counts["deleted"]
        batch.cost_usd = counts["cost"] or Decimal(0)
        batch.status = derive_status(
            counts, cancel_requested=batch.cancel_requested_at is not None, paused=batch.paused_at is not None
        )
        now = timezone.now()
        if batch.status not in (BatchStatus.QUEUED, BatchStatus.PAUSED) and batch.started_at is None:
            batch.started_at = now
        finishes_now = batch.status not in ACTIVE_BATCH_STATUSES and batch.finished_at is None
        if batch.status in ACTIVE_BATCH_STATUSES:
            batch.finished_at = None
        elif batch.finished_at is None:
            batch.finished_at = now
        batch.save(
            update_fields=[
                "total", "completed", "failed", "cancelled", "deleted", "cost_usd", "status", "started_at",
                "finished_at",
            ]
        )  # fmt: skip
        if finishes_now and batch.webhook_url:
            webhooks.delivery_create(batch=batch, now=now)  # sent by a node once this commits
    return batch


def derive_status(counts: dict[str, int], *, cancel_requested: bool, paused: bool = False) -> str:
    total = counts["total"]
    succeeded = counts[GenerationStatus.SUCCEEDED]
    unfinished = counts[GenerationStatus.PENDING] + counts[GenerationStatus.RUNNING]
    if unfinished:
        if paused and not counts[GenerationStatus.RUNNING]:
            return BatchStatus.PAUSED
        untouched = counts[GenerationStatus.PENDING] == total
        return BatchStatus.QUEUED if untouched and not paused else BatchStatus.RUNNING
    if succeeded == total:
        return BatchStatus.COMPLETED
    if cancel_requested:
        return BatchStatus.CANCELLED
    return BatchStatus.FAILED if succeeded == 0 else BatchStatus.PARTIAL


def batches_repair() -> list[uuid.UUID]:
    """Finish what a failed recount or a lost cancel left open.

    Pending work of a cancelled batch is cancelled, and a batch whose rows are all final but whose
    status is not (its last recount hit a database or cache error) is recounted.
    """
    now = timezone.now()
    stray = Generation.objects.filter(status=GenerationStatus.PENDING, batch__cancel_requested_at__isnull=False)
    stray_batches = set(stray.values_list("batch_id", flat=True).distinct()[:1000])
    stray.filter(batch_id__in=stray_batches).update(
        status=GenerationStatus.CANCELLED, error_code="cancelled", worker="", finished_at=now
    )
    active = Batch.objects.filter(status__in=ACTIVE_BATCH_STATUSES)
    unfinished = Generation.objects.filter(status__in=UNFINISHED)
    stale = set(active.exclude(pk__in=unfinished.values("batch_id")).values_list("pk", flat=True)[:1000])
    repaired = stray_batches | stale
    for batch_id in repaired:
        batch_refresh(batch_id=batch_id)
    if stale:
        logger.warning("Recounted %d batch(es) left open after their last image", len(stale))
    return list(repaired)


def batch_cancel(*, batch: Batch) -> Batch:
    """Stop a batch: pending generations are cancelled at once; running ones finish or are cancelled."""
    now = timezone.now()
    with transaction.atomic():
        Batch.objects.filter(pk=batch.pk).update(cancel_requested_at=now, paused_at=None)
        batch.generations.filter(status=GenerationStatus.PENDING).update(
            status=GenerationStatus.CANCELLED, finished_at=now, error_code="cancelled", worker=""
        )
    return batch_refresh(batch_id=batch.pk)


def batch_pause(*, batch: Batch) -> Batch:
    """No new image of the batch starts; those already running finish."""
    Batch.objects.filter(pk=batch.pk, paused_at__isnull=True).update(paused_at=timezone.now())
    return batch_refresh(batch_id=batch.pk)


def batch_resume(*, batch: Batch) -> Batch:
    Batch.objects.filter(pk=batch.pk).update(paused_at=None)
    return batch_refresh(batch_id=batch.pk)


def generations_requeue(*, batch: Batch, generation_ids: list[uuid.UUID]) -> Batch:
    """Give finished-but-unsuccessful generations a fresh attempt budget on the batch's own provider."""
    with transaction.atomic():
        SpooledResult.objects.filter(generation_id__in=generation_ids).delete()
        Generation.objects.filter(
            id__in=generation_ids, status__in=[GenerationStatus.FAILED, GenerationStatus.CANCELLED]
        ).update(
            status=GenerationStatus.PENDING,
            attempts=0,
            provider_index=0,
            provider=batch.provider,
            model=batch.model,
            not_before=None,
            error_code="",
            error_message="",
            error_permanent=False,
            rate_limited_since=None,
            worker="",
            lease_expires_at=None,
            finished_at=None,
        )
        Batch.objects.filter(pk=batch.pk).update(cancel_requested_at=None, finished_at=None)
    return batch_refresh(batch_id=batch.pk)


def generations_delete(*, batch_id: uuid.UUID, generation_ids: Iterable[uuid.UUID]) -> list[str]:
    """Mark finished images of one batch deleted; returns the stored files the caller must remove.

    The rows stay (usage rollups, quotas and the batch's total/completed/failed/cancelled keep
    counting what was made and charged); only `deleted` goes up. An unfinished image is left alone.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = Generation.objects.select_for_update().filter(
            batch_id=batch_id, id__in=list(generation_ids), deleted_at__isnull=True,
            status__in=FINISHED_GENERATION_STATUSES,
        )  # fmt: skip
        files = [name for pair in rows.values_list("image", "thumbnail") for name in pair if name]
        ids = list(rows.values_list("id", flat=True))
        Generation.objects.filter(id__in=ids).update(deleted_at=now, favourite=False, image="", thumbnail="")
        CollectionItem.objects.filter(generation_id__in=ids).delete()
        SpooledResult.objects.filter(generation_id__in=ids).delete()
        batch_refresh(batch_id=batch_id)
    return files


def batch_delete(*, batch: Batch) -> list[str]:
    """Mark an ended batch and all its images deleted; returns the stored files to remove."""
    with transaction.atomic():
        ids = list(batch.generations.filter(deleted_at__isnull=True).values_list("id", flat=True))
        files = generations_delete(batch_id=batch.pk, generation_ids=ids)
        Batch.objects.filter(pk=batch.pk, deleted_at__isnull=True).update(deleted_at=timezone.now())
    return files
