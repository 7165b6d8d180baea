"""Rendering one dispatched attempt: call the provider, store the image, report to the lifecycle.

The scheduler has already claimed the generation and taken its provider permit; this module
only does the work. Every outcome is recorded by generation.lifecycle. A provider's answer is
never thrown away: when storing it fails, the bytes are spooled and the next attempt stores
them without calling the provider again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache

from generation import lifecycle, limits, result_cache
from generation.costs import cost_estimate
from generation.keys import provider_key_secret
from generation.models import Batch, Generation, GenerationStatus, SpooledResult
from generation.parameters import BatchParameters
from generation.providers import get_provider
from generation.providers.base import GenerationRequest, Provider, ProviderError
from generation.renditions import rendition_make_quietly
from generation.storage import StorageUnavailable, StoredImage, delete_files, store_image
from imagegen import http

logger = logging.getLogger(__name__)
REFRESH_INTERVAL_SECONDS = 1
NODE_ENV = "IMAGEGEN_NODE_ID"


def node_id() -> str:
    """This process's node: set by `manage.py qcluster` for its workers, else an inline node of its own."""
    return os.environ.get(NODE_ENV) or f"inline:{socket.gethostname()}:{os.getpid()}"


def worker_id() -> str:
    return f"{node_id()}|{os.getpid()}"


def generation_run(*, generation_id: uuid.UUID, attempt: int) -> str:
    """Render one attempt end to end; returns the status it ended in, or "skipped"."""
    generation = lifecycle.generation_start(generation_id=generation_id, attempt=attempt, worker=worker_id())
    if generation is None:
        return "skipped"  # handed on to another attempt, or already finished
    if generation.batch.started_at is None:
        _refresh_quietly(generation.batch_id)  # the batch shows as running from its first image
    try:
        status = _render(generation)
    except Exception as exc:  # a bug must not strand the row in "running"
        logger.exception("Generation %s crashed", generation.pk)
        error = ProviderError("internal_error", f"Internal error: {type(exc).__name__}", retryable=True)
        status = lifecycle.generation_fail(generation=generation, error=error)
    _refresh_batch_soon(generation.batch_id)
    return status


def _render(generation: Generation) -> str:
    # Only an attempt after a failed store can have a spooled answer: skip the lookup otherwise.
    spooled = None
    if generation.error_code == "storage_unavailable":
        spooled = SpooledResult.objects.filter(generation_id=generation.pk).first()
    if spooled is not None:
        answer = Answer(bytes(spooled.data), spooled.seed, dict(spooled.metadata), spooled.latency_ms)
        return _store_and_record(generation, answer, from_spool=True)
    if generation.cache_key and generation.provider_index == 0:
        cached = _copy_from_cache(generation)
        if cached is not None:
            return cached
        holder = lifecycle.holder(generation.pk, generation.attempts)
        if not limits.provider_slot_held(provider=generation.provider, holder=holder):
            # Dispatched as a hit without a permit, but the source is gone: queue it for a real call.
            return lifecycle.generation_cache_missed(generation=generation)
    provider = get_provider(generation.provider, user_id=generation.batch.owner_id)
    if provider is None:
        message = f"Provider {generation.provider} is not configured."
        error = ProviderError("provider_unavailable", message, retryable=False)
        return lifecycle.generation_fail(generation=generation, error=error)
    started = time.monotonic()
    try:
        with http.budget(settings.GENERATION_PROVIDER_BUDGET_SECONDS):
            images = provider.generate(_request(generation, provider))
        if not images:
            raise ProviderError("empty_response", "The provider returned no image.", retryable=True)
    except ProviderError as error:
        return lifecycle.generation_fail(generation=generation, error=error)
    latency_ms = int((time.monotonic() - started) * 1000)
    image = images[0]
    return _store_and_record(generation, Answer(image.data, image.seed, dict(image.metadata), latency_ms))


def _copy_from_cache(generation: Generation) -> str | None:
    """Copy an identical earlier image and record it as a cached success; None when there is none."""
    base = lifecycle.attempt_file_base(generation.batch_id, generation.pk, generation.attempts)
    try:
        copy = result_cache.cache_copy(generation=generation, base_name=base)
    except StorageUnavailable as exc:
        error = ProviderError("storage_unavailable", f"Copying the cached image failed: {exc}", retryable=True)
        return lifecycle.generation_fail(generation=generation, error=error)
    if copy is None:
        return None
    success = lifecycle.Success(
        image_name=copy.stored.image_name,
        thumbnail_name=copy.stored.thumbnail_name,
        content_hash=copy.stored.content_hash,
        seed=generation.seed,
        metadata={"cached_from": str(copy.source.pk)},
        latency_ms=None,
        quality=copy.source.quality,
        cost=Decimal(0),
        cached=True,
        saved_usd=copy.saved_usd,
    )
    if not lifecycle.generation_succeed(generation=generation, success=success):
        delete_files(copy.stored.image_name, copy.stored.thumbnail_name)
        return "superseded"
    _post_process(generation)
    return GenerationStatus.SUCCEEDED


class Answer:
    """What the provider sent for one image, whether fresh or taken back from the spool."""

    def __init__(self, data: bytes, seed: int | None, metadata: dict[str, Any], latency_ms: int) -> None:
        self.data, self.seed, self.metadata, self.latency_ms = data, seed, metadata, latency_ms


def _store_and_record(generation: Generation, answer: Answer, *, from_spool: bool = False) -> str:
    try:
        stored = _store_with_retries(generation, answer)
    except ProviderError as error:  # not an image: the provider's fault, retried as such
        SpooledResult.objects.filter(generation_id=generation.pk).delete()
        return lifecycle.generation_fail(generation=generation, error=error)
    except StorageUnavailable as exc:
        logger.error("Storing generation %s failed; its image is kept for another try: %s", generation.pk, exc)
        return lifecycle.generation_spool(
            generation=generation,
            data=answer.data,
            seed=answer.seed,
            metadata=answer.metadata,
            latency_ms=answer.latency_ms,
            reason=str(exc),
        )
    parameters = BatchParameters.from_json(generation.batch.parameters)
    quality = str(parameters.options_for(generation.provider_index).get("quality") or "")
    cost = cost_estimate(
        provider=generation.provider,
        model=generation.model,
        width=generation.width,
        height=generation.height,
        quality=quality,
        usage=answer.metadata.get("usage"),
    )
    success = lifecycle.Success(
        image_name=stored.image_name,
        thumbnail_name=stored.thumbnail_name,
        content_hash=stored.content_hash,
        seed=answer.seed if answer.seed is not None else generation.seed,
        metadata=answer.metadata,
        latency_ms=answer.latency_ms,
        quality=quality,
        cost=cost,
    )
    recorded = lifecycle.generation_succeed(generation=generation, success=success, from_spool=from_spool)
    if not recorded:
        delete_files(stored.image_name, stored.thumbnail_name)
        return "superseded"
    _post_process(generation, parameters)
    return GenerationStatus.SUCCEEDED


def _post_process(generation: Generation, parameters: BatchParameters | None = None) -> None:
    """The batch's `output` settings applied to the stored image (a cached copy included)."""
    parameters = parameters or BatchParameters.from_json(generation.batch.parameters)
    if parameters.output is not None:
        rendition_make_quietly(generation_id=generation.pk, output=parameters.output)


def _store_with_retries(generation: Generation, answer: Answer) -> StoredImage:
    """A short outage of storage is ridden out here; a longer one goes to the spool."""
    base = lifecycle.attempt_file_base(generation.batch_id, generation.pk, generation.attempts)
    text = _text_chunks(generation, answer.seed)
    for attempt in range(settings.STORAGE_INLINE_RETRIES + 1):
        try:
            return store_image(data=answer.data, base_name=base, text=text)
        except StorageUnavailable:
            if attempt == settings.STORAGE_INLINE_RETRIES:
                raise
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def _request(generation: Generation, provider: Provider) -> GenerationRequest:
    batch = generation.batch
    parameters = BatchParameters.from_json(batch.parameters)
    api_key = provider_key_secret(owner_id=batch.owner_id, provider=provider.name) if provider.accepts_user_key else ""
    return GenerationRequest(
        prompt=generation.prompt,
        negative_prompt=generation.negative_prompt,
        width=generation.width,
        height=generation.height,
        seed=generation.seed,
        model=generation.model,
        parameters={**parameters.to_json(), "options": parameters.options_for(generation.provider_index)},
        api_key=api_key,
        is_cancelled=lambda: Batch.objects.filter(pk=batch.pk, cancel_requested_at__isnull=False).exists(),
    )


def _text_chunks(generation: Generation, seed: int | None) -> dict[str, object]:
    batch = generation.batch
    return {
        "prompt": generation.prompt,
        "negative_prompt": generation.negative_prompt,
        "seed": str(seed if seed is not None else generation.seed),
        "provider": generation.provider,
        "model": generation.model,
        "size": f"{generation.width}x{generation.height}",
        "generation_id": str(generation.pk),
        "batch_id": str(batch.pk),
        "parameters": batch.parameters,
        "software": "ImageGen",
    }


def _refresh_batch_soon(batch_id: uuid.UUID) -> None:
    """Recount the batch at most once a second while it runs, and always when its last image ends.

    Each worker checks after its own result is committed, so the one that finishes last finds
    nothing in flight and recounts. If that recount fails, the node loop repairs the batch.
    """
    try:
        throttled = not cache.add(f"batch-refresh:{batch_id}", 1, timeout=REFRESH_INTERVAL_SECONDS)
    except Exception:  # the cache (Redis) is down: recount, the database is the truth
        logger.warning("Cache unavailable; recounting batch %s without throttling", batch_id)
        throttled = False
    # The last image in flight always recounts: the batch may now be finished or paused.
    in_flight = Generation.objects.filter(batch_id=batch_id, status=GenerationStatus.RUNNING)
    if not throttled or not in_flight.exists():
        _refresh_quietly(batch_id)


def _refresh_quietly(batch_id: uuid.UUID) -> None:
    try:
        lifecycle.batch_refresh(batch_id=batch_id)
    except Exception:
        logger.exception("Recounting batch %s failed; the node loop will repair it", batch_id)
