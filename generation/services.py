"""Batch write operations: create, cancel, retry, and the one place batch status is derived."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.quotas import quota_reserve, quota_reserve_retry
from accounts.webhook_secrets import webhook_secret_ensure
from generation import lifecycle, result_cache, tasks, webhooks
from generation.models import Batch, BatchPriority, BatchSource, Generation, GenerationStatus, WebhookDelivery
from generation.parameters import BatchParameters, Fallback
from generation.prompts import expand_prompts
from generation.providers import configured_providers
from generation.providers.base import ModelInfo, Provider
from imagegen.errors import Conflict, ValidationFailed

MAX_SEED = 2**32 - 1
MAX_FALLBACKS = 3


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
    parameters: BatchParameters
    webhook_url: str = ""


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
    options: dict[str, Any] | None = None,
    fallbacks: list[str] | None = None,
    cache: bool = True,
    user_id: int | None = None,
    webhook_url: str = "",
) -> BatchSpec:
    """Validate a batch request and say exactly which field is wrong; nothing is written.

    `options` are the chosen model's own settings (quality, style, steps...); `fallbacks` name
    providers (`provider` or `provider:model`) to move to when the first one keeps failing.
    `user_id` adds the providers that user brought their own key for.
    """
    chosen_provider = _check_provider(provider or settings.DEFAULT_PROVIDER, user_id=user_id)
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
    clean_options = _check_options(chosen_model, options or {})
    chosen_fallbacks: list[Fallback] = []
    if fallbacks:
        primary = (chosen_provider.name, chosen_model.id)
        chosen_fallbacks = _check_fallbacks(fallbacks, primary=primary, size=size, prompts=expanded, user_id=user_id)
    parameters = BatchParameters(
        width=size[0],
        height=size[1],
        negative_prompt=negative_prompt.strip(),
        images_per_prompt=images_per_prompt,
        seed=seed,
        options=clean_options,
        fallbacks=tuple(chosen_fallbacks),
        prompt_lines=tuple(prompts),
        template=template,
        cache=cache,
    )
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
        parameters=parameters,
        webhook_url=webhooks.check_webhook_url(webhook_url) if webhook_url.strip() else "",
    )


def _invalid(field: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, details={field: [message]})


def _check_provider(name: str, *, user_id: int | None = None, field: str = "provider") -> Provider:
    providers = configured_providers(user_id=user_id)
    if name not in providers:
        message = _("Unknown or unconfigured provider %(name)r. Available: %(names)s.") % {
            "name": name,
            "names": ", ".join(sorted(providers)),
        }
        raise _invalid(field, message, code="unknown_provider")
    return providers[name]


def _check_options(model: ModelInfo, options: dict[str, Any]) -> dict[str, Any]:
    """The model's own settings, each checked against what the model accepts."""
    if not isinstance(options, dict):
        raise _invalid("options", _("Options must be an object of name: value pairs."), code="invalid_option")
    clean = {}
    for name, value in options.items():
        option = model.option(name)
        if option is None:
            message = _("Model %(model)s has no option %(name)r. Available: %(names)s.") % {
                "model": model.id,
                "name": name,
                "names": ", ".join(o.name for o in model.options) or _("none"),
            }
            raise _invalid("options", message, code="unknown_option")
        try:
            clean[name] = option.check(value)
        except ValueError as error:
            message = _("Option %(name)s must be %(expected)s.") % {"name": name, "expected": error}
            raise _invalid("options", message, code="invalid_option") from None
    return clean


def _check_fallbacks(
    fallbacks: list[str], *, primary: tuple[str, str], size: tuple[int, int], prompts: list[str], user_id: int | None
) -> list[Fallback]:
    """Each fallback: configured, distinct, and able to render this batch."""
    if len(fallbacks) > MAX_FALLBACKS:
        message = _("At most %(max)d fallback providers.") % {"max": MAX_FALLBACKS}
        raise _invalid("fallbacks", message, code="too_many_fallbacks")
    chosen: list[Fallback] = []
    seen = {primary}
    for entry in fallbacks:
        name, _sep, model_id = str(entry).partition(":")
        provider = _check_provider(name.strip(), user_id=user_id, field="fallbacks")
        model = _check_model(provider, model_id.strip(), field="fallbacks")
        if (provider.name, model.id) in seen:
            message = _("%(entry)s is listed twice (or is the batch's own model).") % {"entry": entry}
            raise _invalid("fallbacks", message, code="duplicate_fallback")
        if size not in model.sizes or any(len(p) > model.max_prompt_length for p in prompts):
            message = _("Fallback %(entry)s cannot render this batch (size or prompt length).") % {"entry": entry}
            raise _invalid("fallbacks", message, code="unsuitable_fallback")
        seen.add((provider.name, model.id))
        chosen.append(Fallback(provider=provider.name, model=model.id))
    return chosen


def _check_model(provider: Provider, model: str, *, field: str = "model") -> ModelInfo:
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
    raise _invalid(field, message, code="unknown_model")


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


def batch_create(
    *,
    owner: User,
    spec: BatchSpec,
    source: str = BatchSource.API,
    priority: int = BatchPriority.NORMAL,
    prompt_seeds: Sequence[int] | None = None,
) -> Batch:
    """Write the batch and one generation per image; the scheduler hands them to workers after commit.

    `prompt_seeds` gives each prompt its own explicit seed (comparisons: the same seeds on every arm).
    """
    check_priority(user=owner, priority=priority)
    now = timezone.now()
    with transaction.atomic():
        # Locks the owner's quota row first, so concurrent submissions cannot overspend.
        quota_reserve(user=owner, images=len(spec.prompts) * spec.images_per_prompt)
        batch = Batch.objects.create(
            owner=owner,
            name=spec.name,
            provider=spec.provider.name,
            model=spec.model.id,
            parameters=spec.parameters.to_json(),
            source=source,
            priority=priority,
            total=len(spec.prompts) * spec.images_per_prompt,
            created_at=now,
            webhook_url=spec.webhook_url,
        )
        if spec.webhook_url:
            webhook_secret_ensure(user=owner)  # so the owner can read it before the first delivery
        # A seed given for the batch or per prompt (comparisons) is explicit, and makes the image cacheable.
        explicit = spec.seed is not None or bool(prompt_seeds)
        seeded = [
            (prompt, _seed(prompt_seeds[number] if prompt_seeds else spec.seed, copy))
            for number, prompt in enumerate(spec.prompts)
            for copy in range(spec.images_per_prompt)
        ]
        generations = [
            Generation(
                id=uuid.uuid4(),
                batch=batch,
                position=index,
                prompt=prompt,
                negative_prompt=spec.negative_prompt,
                width=spec.width,
                height=spec.height,
                seed=seed,
                provider=spec.provider.name,
                model=spec.model.id,
                cache_key=_cache_key(owner, spec, prompt, seed) if explicit else "",
                created_at=now,
            )
            for index, (prompt, seed) in enumerate(seeded)
        ]
        Generation.objects.bulk_create(generations, batch_size=500)
        transaction.on_commit(tasks.dispatch_now)
    return batch


def check_priority(*, user: User, priority: int) -> None:
    """Anyone may lower their batch's priority; `high` is for staff and users given the permission."""
    if priority not in BatchPriority.values:
        raise _invalid("priority", _("Priority must be low, normal or high."), code="invalid_priority")
    if priority == BatchPriority.HIGH and not (user.is_staff or user.has_perm("generation.submit_high_priority")):
        message = _("High priority is for staff and users given the permission; use normal or low.")
        raise _invalid("priority", message, code="priority_not_allowed")


def _cache_key(owner: User, spec: BatchSpec, prompt: str, seed: int) -> str:
    """The image's result-cache key (its seed is explicit); blank (never cached) with `cache: false`."""
    if not spec.parameters.cache:
        return ""
    return result_cache.cache_key(
        owner_id=owner.pk,
        provider=spec.provider.name,
        model=spec.model.id,
        prompt=prompt,
        negative_prompt=spec.negative_prompt,
        width=spec.width,
        height=spec.height,
        seed=seed,
        options=spec.parameters.options,
    )


def _seed(base: int | None, copy: int) -> int:
    if base is None:
        return secrets.randbelow(MAX_SEED + 1)
    return (base + copy) % (MAX_SEED + 1)


def batch_cancel(*, batch: Batch) -> Batch:
    """Stop a batch: pending generations are cancelled at once; running ones finish or are cancelled."""
    if not batch.is_active:
        raise Conflict(_("Only a queued, running or paused batch can be cancelled."), code="batch_not_active")
    return lifecycle.batch_cancel(batch=batch)


def batch_pause(*, batch: Batch) -> Batch:
    """Hold a batch: no new image starts until it is resumed; images already running finish."""
    if not batch.is_active or batch.paused_at is not None:
        raise Conflict(_("Only a queued or running batch can be paused."), code="batch_not_pausable")
    return lifecycle.batch_pause(batch=batch)


def batch_resume(*, batch: Batch) -> Batch:
    if batch.paused_at is None or not batch.is_active:
        raise Conflict(_("Only a paused batch can be resumed."), code="batch_not_paused")
    batch = lifecycle.batch_resume(batch=batch)
    transaction.on_commit(tasks.dispatch_now)
    return batch


def batch_retry_failed(*, batch: Batch, include_permanent: bool = False) -> Batch:
    """Queue the failed and cancelled images of a finished batch again, from a clean slate.

    Failures no retry can fix (content filtered, invalid request) stay unless `include_permanent`.
    """
    if batch.is_active:
        raise Conflict(_("This batch is still running; wait until it ends."), code="batch_active")
    retry = batch.generations.listed().filter(status__in=[GenerationStatus.FAILED, GenerationStatus.CANCELLED])
    if not include_permanent:
        retry = retry.filter(error_permanent=False)
    ids = list(retry.values_list("id", flat=True))
    if not ids:
        raise Conflict(_("This batch has no failed or cancelled images to retry."), code="nothing_to_retry")
    return _requeue(batch, ids)


def generation_retry(*, generation: Generation) -> Batch:
    """Render one failed or cancelled image again (even a permanent failure: the user asked for it)."""
    if generation.status not in (GenerationStatus.FAILED, GenerationStatus.CANCELLED):
        raise Conflict(_("Only a failed or cancelled image can be retried."), code="generation_not_retryable")
    batch = Batch.objects.get(pk=generation.batch_id)
    if batch.cancel_requested_at is not None and batch.is_active:
        raise Conflict(_("This batch is being cancelled; wait until it ends."), code="batch_active")
    return _requeue(batch, [generation.pk])


def _requeue(batch: Batch, ids: list[uuid.UUID]) -> Batch:
    with transaction.atomic():
        quota_reserve_retry(user=batch.owner, generation_ids=ids)  # charged to today, even for old batches
        batch = lifecycle.generations_requeue(batch=batch, generation_ids=ids)
        transaction.on_commit(tasks.dispatch_now)
    return batch


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a batch's webhook again now: same webhook-id, fresh timestamp and signature."""
    with transaction.atomic():
        delivery = webhooks.delivery_rearm(delivery=delivery, now=timezone.now())
        transaction.on_commit(tasks.webhooks_dispatch)
    return delivery
