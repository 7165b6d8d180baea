"""Rendering one generation: claim it with a lease, call its provider, store the image exactly once.

Around the provider call: the provider's cluster-wide limits (generation.limits), retries of
transient failures with backoff (a `not_before` the claim respects), failover to the batch's
fallback providers, cost estimates, and cancellation.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation import limits, queue
from generation.costs import cost_estimate
from generation.keys import provider_key_secret
from generation.models import Batch, BatchStatus, Generation, GenerationStatus
from generation.providers import get_provider
from generation.providers.base import GeneratedImage, GenerationRequest, Provider, ProviderError
from generation.services import batch_refresh
from generation.storage import StoredImage, delete_files, store_image

logger = logging.getLogger(__name__)
CANCEL_CHECK_SECONDS = 0.25
REFRESH_INTERVAL_SECONDS = 1


def attempts_allowed() -> Any:
    """Attempts a generation may use: GENERATION_MAX_ATTEMPTS on each provider it fails over to."""
    return (F("provider_index") + 1) * settings.GENERATION_MAX_ATTEMPTS


def generation_claim(*, generation_id: uuid.UUID) -> Generation | None:
    """Atomically take a generation for this worker, or None when it is done, waiting or leased elsewhere.

    The conditional UPDATE is the lock: of two deliveries of the same task only one matches.
    """
    now = timezone.now()
    claimable = Q(status=GenerationStatus.PENDING) | Q(status=GenerationStatus.RUNNING, lease_expires_at__lt=now)
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    taken = (
        Generation.objects.filter(claimable, due, pk=generation_id, attempts__lt=attempts_allowed())
        .filter(batch__cancel_requested_at__isnull=True)
        .update(
            status=GenerationStatus.RUNNING,
            attempts=F("attempts") + 1,
            lease_expires_at=queue.next_lease(),
            not_before=None,
            started_at=Coalesce(F("started_at"), now),
        )
    )
    if not taken:
        return None
    generation = Generation.objects.select_related("batch").get(pk=generation_id)
    if not generation.provider:
        generation.provider, generation.model = generation.batch.provider, generation.batch.model
        generation.save(update_fields=["provider", "model"])
    return generation


def generation_run(*, generation_id: uuid.UUID) -> str:
    """Render one generation end to end; returns the status it ended in (or skipped/deferred)."""
    generation = generation_claim(generation_id=generation_id)
    if generation is None:
        # Not claimable: done, leased elsewhere, or waiting out a backoff (then wait or park it).
        if not _wait_until_due(generation_id):
            return "deferred"
        generation = generation_claim(generation_id=generation_id)
        if generation is None:
            return "skipped"
    if generation.batch.status == BatchStatus.QUEUED:
        batch_refresh(batch_id=generation.batch_id)  # the batch shows as running from its first image
    try:
        status = _render(generation)
    except Exception as exc:  # a bug must not strand the row in "running"
        logger.exception("Generation %s crashed", generation.pk)
        error = ProviderError("internal_error", f"Internal error: {type(exc).__name__}", retryable=True)
        status = _record_failure(generation, error)
    _refresh_batch_soon(generation.batch_id)
    return status


def _refresh_batch_soon(batch_id: uuid.UUID) -> None:
    """Recount the batch at most once a second while it runs, and always when its last image ends.

    Each worker checks after its own result is committed, so the one that finishes last always
    finds nothing unfinished and recounts.
    """
    if cache.add(f"batch-refresh:{batch_id}", 1, timeout=REFRESH_INTERVAL_SECONDS):
        batch_refresh(batch_id=batch_id)
        return
    unfinished = (GenerationStatus.PENDING, GenerationStatus.RUNNING)
    if not Generation.objects.filter(batch_id=batch_id, status__in=unfinished).exists():
        batch_refresh(batch_id=batch_id)


def _wait_until_due(generation_id: uuid.UUID) -> bool:
    """Sleep through a short backoff (watching for cancel); park a long one for the sweeper."""
    row = Generation.objects.filter(pk=generation_id, status=GenerationStatus.PENDING).values("not_before").first()
    while row and row["not_before"] and row["not_before"] > timezone.now():
        remaining = (row["not_before"] - timezone.now()).total_seconds()
        if remaining > settings.GENERATION_RETRY_INLINE_SECONDS:
            parked = Generation.objects.filter(
                pk=generation_id, status=GenerationStatus.PENDING, not_before__gt=timezone.now()
            )
            parked.update(enqueued_at=None)  # the sweeper enqueues parked rows once they are due
            return False
        time.sleep(min(remaining, CANCEL_CHECK_SECONDS))
        row = Generation.objects.filter(pk=generation_id, status=GenerationStatus.PENDING).values("not_before").first()
    return True


def _render(generation: Generation) -> str:
    batch = generation.batch
    provider = get_provider(generation.provider, user_id=batch.owner_id)
    if provider is None:
        message = f"Provider {generation.provider} is not configured."
        return _record_failure(generation, ProviderError("provider_unavailable", message, retryable=False))
    request = _request(generation, provider)
    holder = f"{generation.pk}:{generation.attempts}"
    outcome = limits.provider_slot_wait(
        provider=provider.name,
        holder=holder,
        is_cancelled=request.is_cancelled,
        max_wait=settings.PROVIDER_SLOT_WAIT_SECONDS,
    )
    if outcome.cancelled:
        return _record_cancelled(generation)
    if not outcome.granted:
        return _defer(generation, outcome.retry_at)
    started = time.monotonic()
    try:
        images = _call_provider(provider, request, holder)
        stored = store_image(
            data=images[0].data, base_name=_file_base(generation), text=_text_chunks(generation, images[0])
        )
    except ProviderError as error:
        return _record_failure(generation, error)
    latency_ms = int((time.monotonic() - started) * 1000)
    return _record_success(generation, images[0], stored, latency_ms)


def _call_provider(provider: Provider, request: GenerationRequest, holder: str) -> list[GeneratedImage]:
    """The provider call itself, holding the concurrency slot only while it runs."""
    try:
        images = provider.generate(request)
    finally:
        limits.provider_slot_release(provider=provider.name, holder=holder)
    if not images:
        raise ProviderError("empty_response", "The provider returned no image.", retryable=True)
    return images


def _request(generation: Generation, provider: Provider) -> GenerationRequest:
    batch = generation.batch
    api_key = provider_key_secret(owner_id=batch.owner_id, provider=provider.name) if provider.accepts_user_key else ""
    return GenerationRequest(
        prompt=generation.prompt,
        negative_prompt=generation.negative_prompt,
        width=generation.width,
        height=generation.height,
        seed=generation.seed,
        model=generation.model,
        parameters={**batch.parameters, "options": _options(generation)},
        api_key=api_key,
        is_cancelled=lambda: Batch.objects.filter(pk=batch.pk, cancel_requested_at__isnull=False).exists(),
    )


def _options(generation: Generation) -> dict[str, Any]:
    """The batch's options on its own provider; a fallback's own options after failover."""
    parameters = generation.batch.parameters
    if generation.provider_index == 0:
        return dict(parameters.get("options") or {})
    fallbacks = parameters.get("fallbacks") or []
    return dict(fallbacks[generation.provider_index - 1].get("options") or {})


def _file_base(generation: Generation) -> str:
    # The attempt number keeps a late, superseded attempt from overwriting the winner's file.
    return f"{generation.batch_id}/{generation.pk}-{generation.attempts}"


def _text_chunks(generation: Generation, image: GeneratedImage) -> dict[str, object]:
    batch = generation.batch
    return {
        "prompt": generation.prompt,
        "negative_prompt": generation.negative_prompt,
        "seed": str(image.seed if image.seed is not None else generation.seed),
        "provider": generation.provider,
        "model": generation.model,
        "size": f"{generation.width}x{generation.height}",
        "generation_id": str(generation.pk),
        "batch_id": str(batch.pk),
        "parameters": batch.parameters,
        "software": "ImageGen",
    }


def _still_ours(generation: Generation) -> Q:
    # Fencing: only the attempt that holds the lease may finish the row.
    return Q(pk=generation.pk, status=GenerationStatus.RUNNING, attempts=generation.attempts)


def _record_success(generation: Generation, image: GeneratedImage, stored: StoredImage, latency_ms: int) -> str:
    quality = str(_options(generation).get("quality") or "")
    cost = cost_estimate(
        provider=generation.provider,
        model=generation.model,
        width=generation.width,
        height=generation.height,
        quality=quality,
        usage=image.metadata.get("usage"),
    )
    finished = Generation.objects.filter(_still_ours(generation)).update(
        status=GenerationStatus.SUCCEEDED,
        image=stored.image_name,
        thumbnail=stored.thumbnail_name,
        content_hash=stored.content_hash,
        seed=image.seed if image.seed is not None else generation.seed,
        metadata={**generation.metadata, **image.metadata},
        provider_latency_ms=latency_ms,
        quality=quality[:30],
        cost_usd=cost,
        error_code="",
        error_message="",
        lease_expires_at=None,
        finished_at=timezone.now(),
    )
    if not finished:
        delete_files(stored.image_name, stored.thumbnail_name)
        logger.warning("Generation %s was taken over by another attempt; result discarded", generation.pk)
        return "superseded"
    return GenerationStatus.SUCCEEDED


def _record_failure(generation: Generation, error: ProviderError) -> str:
    if error.code == "cancelled":
        return _record_cancelled(generation, error.message)
    if error.code == "rate_limited":
        limits.provider_cooldown_set(
            provider=generation.provider, seconds=retry_delay(generation, error), reason=error.message
        )
    allowed = (generation.provider_index + 1) * settings.GENERATION_MAX_ATTEMPTS
    if error.retryable and generation.attempts < allowed:
        return _schedule_retry(generation, error, retry_delay(generation, error))
    if error.retryable and generation.provider_index < len(generation.batch.parameters.get("fallbacks") or []):
        return _fail_over(generation, error)
    Generation.objects.filter(_still_ours(generation)).update(
        status=GenerationStatus.FAILED,
        error_code=error.code[:60],
        error_message=error.message,
        lease_expires_at=None,
        finished_at=timezone.now(),
    )
    return GenerationStatus.FAILED


def retry_delay(generation: Generation, error: ProviderError) -> float:
    """Exponential backoff with jitter, never shorter than what the provider asked for."""
    attempt = max(1, generation.attempts - generation.provider_index * settings.GENERATION_MAX_ATTEMPTS)
    ceiling = min(settings.GENERATION_RETRY_MAX_SECONDS, settings.GENERATION_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    backoff = random.uniform(0.5, 1.0) * ceiling  # noqa: S311 - jitter, not cryptography
    return max(backoff, error.retry_after or 0.0)


def _schedule_retry(generation: Generation, error: ProviderError, delay: float) -> str:
    return _back_to_pending(
        generation, timezone.now() + timedelta(seconds=delay), error_code=error.code[:60], error_message=error.message
    )


def _defer(generation: Generation, retry_at: datetime | None) -> str:
    """No slot free (limit reached or provider cooling down): hand back without spending an attempt."""
    when = retry_at or timezone.now() + timedelta(seconds=random.uniform(0.5, 1.5))  # noqa: S311
    return _back_to_pending(generation, when, attempts=F("attempts") - 1)


def _back_to_pending(generation: Generation, not_before: datetime, **changes: Any) -> str:
    soon = (not_before - timezone.now()).total_seconds() <= settings.GENERATION_RETRY_INLINE_SECONDS
    updated = Generation.objects.filter(_still_ours(generation)).update(
        status=GenerationStatus.PENDING,
        lease_expires_at=None,
        not_before=not_before,
        enqueued_at=timezone.now() if soon else None,  # a parked row waits for the sweeper
        **changes,
    )
    if updated and soon:
        queue.enqueue_generations([generation.pk], batch_id=generation.batch_id)
    return GenerationStatus.PENDING


def _fail_over(generation: Generation, error: ProviderError) -> str:
    fallback = generation.batch.parameters["fallbacks"][generation.provider_index]
    move = {
        "from": f"{generation.provider}:{generation.model}",
        "to": f"{fallback['provider']}:{fallback['model']}",
        "error_code": error.code,
        "at": timezone.now().isoformat(),
    }
    metadata = {**generation.metadata, "failovers": [*generation.metadata.get("failovers", []), move]}
    logger.info("Generation %s fails over from %s to %s after %s", generation.pk, move["from"], move["to"], error.code)
    updated = Generation.objects.filter(_still_ours(generation)).update(
        status=GenerationStatus.PENDING,
        provider=fallback["provider"],
        model=fallback["model"],
        provider_index=generation.provider_index + 1,
        metadata=metadata,
        error_code=error.code[:60],
        error_message=error.message,
        lease_expires_at=None,
        not_before=None,
        enqueued_at=timezone.now(),
    )
    if updated:
        queue.enqueue_generations([generation.pk], batch_id=generation.batch_id)
    return GenerationStatus.PENDING


def _record_cancelled(generation: Generation, message: str = "") -> str:
    Generation.objects.filter(_still_ours(generation)).update(
        status=GenerationStatus.CANCELLED,
        error_code="cancelled",
        error_message=message,
        lease_expires_at=None,
        finished_at=timezone.now(),
    )
    return GenerationStatus.CANCELLED
