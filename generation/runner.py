"""Rendering one generation: claim it with a lease, call its provider, store the image exactly once."""

from __future__ import annotations

import logging
import time
import uuid

from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation import queue
from generation.models import Generation, GenerationStatus
from generation.providers import get_provider
from generation.providers.base import GeneratedImage, GenerationRequest, ProviderError
from generation.services import batch_refresh
from generation.storage import StoredImage, delete_files, store_image

logger = logging.getLogger(__name__)


def generation_claim(*, generation_id: uuid.UUID) -> Generation | None:
    """Atomically take a generation for this worker, or None when it is done or leased elsewhere.

    The conditional UPDATE is the lock: of two deliveries of the same task only one matches.
    """
    now = timezone.now()
    claimable = Q(status=GenerationStatus.PENDING) | Q(status=GenerationStatus.RUNNING, lease_expires_at__lt=now)
    taken = (
        Generation.objects.filter(claimable, pk=generation_id, attempts__lt=settings.GENERATION_MAX_ATTEMPTS)
        .filter(batch__cancel_requested_at__isnull=True)
        .update(
            status=GenerationStatus.RUNNING,
            attempts=F("attempts") + 1,
            lease_expires_at=queue.next_lease(),
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
    """Render one generation end to end; returns the status it ended in (or 'skipped')."""
    generation = generation_claim(generation_id=generation_id)
    if generation is None:
        return "skipped"
    if generation.attempts == 1:
        batch_refresh(batch_id=generation.batch_id)  # the batch shows as running from its first image
    try:
        status = _render(generation)
    except Exception as exc:  # a bug must not strand the row in "running"
        logger.exception("Generation %s crashed", generation.pk)
        error = ProviderError("internal_error", f"Internal error: {type(exc).__name__}", retryable=True)
        status = _record_failure(generation, error)
    batch_refresh(batch_id=generation.batch_id)
    return status


def _render(generation: Generation) -> str:
    batch = generation.batch
    provider = get_provider(generation.provider)
    if provider is None:
        message = f"Provider {generation.provider} is not configured."
        error = ProviderError("provider_unavailable", message, retryable=False)
        return _record_failure(generation, error)
    request = GenerationRequest(
        prompt=generation.prompt,
        negative_prompt=generation.negative_prompt,
        width=generation.width,
        height=generation.height,
        seed=generation.seed,
        model=generation.model,
        parameters=batch.parameters,
    )
    started = time.monotonic()
    try:
        images = provider.generate(request)
        if not images:
            raise ProviderError("empty_response", "The provider returned no image.", retryable=True)
        stored = store_image(
            data=images[0].data, base_name=_file_base(generation), text=_text_chunks(generation, images[0])
        )
    except ProviderError as error:
        return _record_failure(generation, error)
    latency_ms = int((time.monotonic() - started) * 1000)
    return _record_success(generation, images[0], stored, latency_ms)


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
    finished = Generation.objects.filter(_still_ours(generation)).update(
        status=GenerationStatus.SUCCEEDED,
        image=stored.image_name,
        thumbnail=stored.thumbnail_name,
        content_hash=stored.content_hash,
        seed=image.seed if image.seed is not None else generation.seed,
        metadata={**generation.metadata, **image.metadata},
        provider_latency_ms=latency_ms,
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
    can_retry = error.retryable and generation.attempts < settings.GENERATION_MAX_ATTEMPTS
    status = GenerationStatus.PENDING if can_retry else GenerationStatus.FAILED
    updated = Generation.objects.filter(_still_ours(generation)).update(
        status=status,
        error_code=error.code[:60],
        error_message=error.message,
        lease_expires_at=None,
        enqueued_at=timezone.now(),
        finished_at=None if can_retry else timezone.now(),
    )
    if updated and can_retry:
        queue.enqueue_generations([generation.pk])
    return status
