"""Batch write operations: create, cancel, retry, and the one place batch status is derived."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.quotas import quota_reserve
from generation import queue
from generation.models import Batch, BatchSource, BatchStatus, Generation, GenerationStatus
from generation.prompts import expand_prompts
from generation.providers import configured_providers
from generation.providers.base import ModelInfo, Provider
from imagegen.errors import Conflict, ValidationFailed

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class BatchSpec:
    """A validated batch request, ready to be written."""

    name: str
    provider: Provider
    model: ModelInfo
    prompts: list[str]
    negative_prompt: str
    images_per_prompt: int
    width: int
    height: int
    seed: int | None
    parameters: dict[str, Any]


def check_batch_request(
    *,
    name: str = "",
    provider: str = "",
    model: str = "",
    prompts: list[str],
    negative_prompt: str = "",
    images_per_prompt: int = 1,
    width: int | None = None,
    height: int | None = None,
    seed: int | None = None,
    template: bool = False,
    parameters: dict[str, Any] | None = None,
) -> BatchSpec:
    """Validate a batch request and say exactly which field is wrong; nothing is written."""
    chosen_provider = _check_provider(provider or settings.DEFAULT_PROVIDER)
    chosen_model = _check_model(chosen_provider, model)
    expanded = _check_prompts(prompts, template=template, model=chosen_model)
    if not 1 <= images_per_prompt <= settings.MAX_IMAGES_PER_PROMPT:
        raise _invalid(
            "images_per_prompt",
            _("Images per prompt must be between 1 and %(max)d.") % {"max": settings.MAX_IMAGES_PER_PROMPT},
        )
    if len(expanded) * images_per_prompt > settings.MAX_PROMPTS_PER_BATCH * settings.MAX_IMAGES_PER_PROMPT:
        raise _invalid("images_per_prompt", _("This batch asks for too many images."))
    size = _check_size(chosen_model, width, height)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise _invalid("seed", _("Seed must be between 0 and %(max)d.") % {"max": MAX_SEED})
    if negative_prompt and not chosen_model.supports_negative_prompt:
        raise _invalid("negative_prompt", _("This model does not take a negative prompt."))
    return BatchSpec(
        name=(name.strip() or expanded[0])[:200],
        provider=chosen_provider,
        model=chosen_model,
        prompts=expanded,
        negative_prompt=negative_prompt.strip(),
        images_per_prompt=images_per_prompt,
        width=size[0],
        height=size[1],
        seed=seed,
        parameters=parameters or {},
    )


def _invalid(field: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, details={field: [message]})


def _check_provider(name: str) -> Provider:
    providers = configured_providers()
    if name not in providers:
        message = _("Unknown or unconfigured provider %(name)r. Available: %(names)s.") % {
            "name": name,
            "names": ", ".join(sorted(providers)),
        }
        raise _invalid("provider", message, code="unknown_provider")
    return providers[name]


def _check_model(provider: Provider, model: str) -> ModelInfo:
    models = provider.models()
    if not model:
        return models[0]
    for info in models:
        if info.id == model:
            return info
    message = _("Provider %(provider)s has no model %(model)r. Available: %(models)s.") % {
        "provider": provider.name,
        "model": model,
        "models": ", ".join(m.id for m in models),
    }
    raise _invalid("model", message, code="unknown_model")


def _check_prompts(prompts: list[str], *, template: bool, model: ModelInfo) -> list[str]:
    limit = settings.MAX_PROMPTS_PER_BATCH
    expanded = expand_prompts(prompts, template=template, limit=limit)
    if not expanded:
        raise _invalid("prompts", _("Enter at least one prompt."), code="no_prompts")
    if len(expanded) > limit:
        raise _invalid("prompts", _("A batch holds at most %(limit)d prompts.") % {"limit": limit}, "too_many_prompts")
    for number, prompt in enumerate(expanded, start=1):
        if len(prompt) > model.max_prompt_length:
            message = _("Prompt %(number)d is %(length)d characters long; this model takes at most %(max)d.") % {
                "number": number,
                "length": len(prompt),
                "max": model.max_prompt_length,
            }
            raise _invalid("prompts", message, code="prompt_too_long")
    return expanded


def _check_size(model: ModelInfo, width: int | None, height: int | None) -> tuple[int, int]:
    if width is None and height is None:
        return model.default
    size = (width or height or 0, height or width or 0)
    if size not in model.sizes:
        message = _("Size %(size)s is not offered by this model. Choose one of: %(sizes)s.") % {
            "size": "{}x{}".format(*size),
            "sizes": ", ".join(f"{w}x{h}" for w, h in model.sizes),
        }
        raise _invalid("size", message, code="unsupported_size")
    return size


def batch_create(*, owner: User, spec: BatchSpec, source: str = BatchSource.API) -> Batch:
    """Write the batch and one generation per image, then queue them once the rows are committed."""
    now = timezone.now()
    parameters = {
        **spec.parameters,
        "negative_prompt": spec.negative_prompt,
        "images_per_prompt": spec.images_per_prompt,
        "width": spec.width,
        "height": spec.height,
        "seed": spec.seed,
    }
    with transaction.atomic():
        # Locks the owner's quota row first, so concurrent submissions cannot overspend.
        quota_reserve(user=owner, images=len(spec.prompts) * spec.images_per_prompt)
        batch = Batch.objects.create(
            owner=owner,
            name=spec.name,
            provider=spec.provider.name,
            model=spec.model.id,
            parameters=parameters,
            source=source,
            total=len(spec.prompts) * spec.images_per_prompt,
            created_at=now,
        )
        generations = [
            Generation(
                id=uuid.uuid4(),
                batch=batch,
                position=index,
                prompt=prompt,
                negative_prompt=spec.negative_prompt,
                width=spec.width,
                height=spec.height,
                seed=_seed(spec.seed, copy),
                enqueued_at=now,
                created_at=now,
            )
            for index, (prompt, copy) in enumerate(
                (prompt, copy) for prompt in spec.prompts for copy in range(spec.images_per_prompt)
            )
        ]
        Generation.objects.bulk_create(generations, batch_size=500)
        ids = [g.id for g in generations]
        transaction.on_commit(lambda: queue.enqueue_generations(ids))
    return batch


def _seed(base: int | None, copy: int) -> int:
    if base is None:
        return secrets.randbelow(MAX_SEED + 1)
    return (base + copy) % (MAX_SEED + 1)


def batch_cancel(*, batch: Batch) -> Batch:
    """Stop a batch: pending generations are cancelled at once; running ones finish."""
    if not batch.is_active:
        raise Conflict(_("Only a queued or running batch can be cancelled."), code="batch_not_active")
    now = timezone.now()
    with transaction.atomic():
        Batch.objects.filter(pk=batch.pk).update(cancel_requested_at=now)
        batch.generations.filter(status=GenerationStatus.PENDING).update(
            status=GenerationStatus.CANCELLED, finished_at=now, error_code="cancelled"
        )
    return batch_refresh(batch_id=batch.pk)


def batch_retry_failed(*, batch: Batch) -> Batch:
    """Queue every failed or cancelled generation of a finished batch again, from a clean slate."""
    if batch.is_active:
        raise Conflict(_("This batch is still running; wait until it ends."), code="batch_active")
    retry = [GenerationStatus.FAILED, GenerationStatus.CANCELLED]
    now = timezone.now()
    with transaction.atomic():
        ids = list(batch.generations.filter(status__in=retry).values_list("id", flat=True))
        if not ids:
            raise Conflict(_("This batch has no failed or cancelled images to retry."), code="nothing_to_retry")
        quota_reserve(user=batch.owner, images=len(ids))
        Generation.objects.filter(id__in=ids).update(
            status=GenerationStatus.PENDING,
            attempts=0,
            error_code="",
            error_message="",
            lease_expires_at=None,
            enqueued_at=now,
            finished_at=None,
        )
        Batch.objects.filter(pk=batch.pk).update(cancel_requested_at=None, finished_at=None)
        transaction.on_commit(lambda: queue.enqueue_generations(ids))
    return batch_refresh(batch_id=batch.pk)


def batch_refresh(*, batch_id: uuid.UUID) -> Batch:
    """Recount a batch's generations and derive its status: the only place status is decided."""
    counts = Generation.objects.filter(batch_id=batch_id).aggregate(
        total=Count("id"),
        **{status.value: Count("id", filter=Q(status=status)) for status in GenerationStatus},
    )
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        batch.total = counts["total"]
        batch.completed = counts[GenerationStatus.SUCCEEDED]
        batch.failed = counts[GenerationStatus.FAILED]
        batch.cancelled = counts[GenerationStatus.CANCELLED]
        batch.status = derive_status(counts, cancel_requested=batch.cancel_requested_at is not None)
        now = timezone.now()
        if batch.status != BatchStatus.QUEUED and batch.started_at is None:
            batch.started_at = now
        if batch.status in (BatchStatus.QUEUED, BatchStatus.RUNNING):
            batch.finished_at = None
        elif batch.finished_at is None:
            batch.finished_at = now
        batch.save(update_fields=["total", "completed", "failed", "cancelled", "status", "started_at", "finished_at"])
    return batch


def derive_status(counts: dict[str, int], *, cancel_requested: bool) -> str:
    total = counts["total"]
    succeeded = counts[GenerationStatus.SUCCEEDED]
    unfinished = counts[GenerationStatus.PENDING] + counts[GenerationStatus.RUNNING]
    if unfinished:
        untouched = counts[GenerationStatus.PENDING] == total
        return BatchStatus.QUEUED if untouched else BatchStatus.RUNNING
    if succeeded == total:
        return BatchStatus.COMPLETED
    if cancel_requested:
        return BatchStatus.CANCELLED
    return BatchStatus.FAILED if succeeded == 0 else BatchStatus.PARTIAL
