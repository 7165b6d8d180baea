"""Batch write operations: create, cancel, retry, and the one place batch status is derived."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.quotas import QuotaUsage, quota_reserve, quota_reserve_retry, quota_usage
from accounts.webhook_secrets import webhook_secret_ensure
from generation import lifecycle, result_cache, tasks, webhooks
from generation.costs import cost_estimate
from generation.imports import RowError, refuse_rows
from generation.models import Batch, BatchPriority, BatchSource, Generation, GenerationStatus, WebhookDelivery
from generation.output import check_output, output_from_provider_options
from generation.parameters import BatchParameters, Fallback, PromptItem
from generation.prompts import expand_each, expand_prompts
from generation.providers import configured_providers
from generation.providers.base import ModelInfo, Provider
from imagegen.errors import Conflict, ValidationFailed

MAX_SEED = 2**32 - 1
MAX_FALLBACKS = 3


@dataclass(frozen=True)
class SpecRow:
    """One prompt to render (after templates) with its own settings and how many images of it."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    seed: int | None
    images: int


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
    rows: tuple[SpecRow, ...] = ()
    webhook_url: str = ""

    @property
    def total_images(self) -> int:
        return sum(row.images for row in self.rows)


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
    items: list[PromptItem] | None = None,
    cache: bool = True,
    user_id: int | None = None,
    webhook_url: str = "",
    output: Any = None,
) -> BatchSpec:
    """Validate a batch request and say exactly which field is wrong; nothing is written.

    `options` are the chosen model's own settings (quality, style, steps...); `fallbacks` name
    providers (`provider` or `provider:model`) to move to when the first one keeps failing.
    `user_id` adds the providers that user brought their own key for. `items` (imported rows) replace
    `prompts`: each row may set its own negative prompt, seed, size and number of images. `output`
    asks for post-processing of each image (generation/output.py).
    """
    chosen_provider = _check_provider(provider or settings.DEFAULT_PROVIDER, user_id=user_id)
    chosen_model = _check_model(chosen_provider, model)
    if items:
        prompts = []
        grouped = _check_item_prompts(items, template=template, model=chosen_model)
    else:
        grouped = [[prompt] for prompt in _check_prompts(prompts, template=template, model=chosen_model)]
    expanded = [prompt for group in grouped for prompt in group]
    if not 1 <= images_per_prompt <= settings.MAX_IMAGES_PER_PROMPT:
        raise _invalid(
            "images_per_prompt",
            _("Images per prompt must be between 1 and %(max)d.") % {"max": settings.MAX_IMAGES_PER_PROMPT},
        )
    size = _check_size(chosen_model, width, height)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise _invalid("seed", _("Seed must be between 0 and %(max)d.") % {"max": MAX_SEED})
    if negative_prompt and not chosen_model.supports_negative_prompt:
        raise _invalid("negative_prompt", _("This model does not take a negative prompt."))
    defaults = SpecRow("", negative_prompt.strip(), size[0], size[1], seed, images_per_prompt)
    rows = _spec_rows(items or [], grouped, defaults=defaults, model=chosen_model)
    if sum(row.images for row in rows) > settings.MAX_PROMPTS_PER_BATCH * settings.MAX_IMAGES_PER_PROMPT:
        raise _invalid("images_per_prompt", _("This batch asks for too many images."))
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
        items=tuple(items or ()),
        cache=cache,
        output=check_output(
            output if output is not None else output_from_provider_options(clean_options), source_size=size
        ),
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
        rows=tuple(rows),
        webhook_url=webhooks.check_webhook_url(webhook_url) if webhook_url.strip() else "",
    )


def _check_item_prompts(items: list[PromptItem], *, template: bool, model: ModelInfo) -> list[list[str]]:
    """Each imported row's prompts (several when its prompt is a template), within the batch limits."""
    limit = settings.MAX_PROMPTS_PER_BATCH
    grouped = expand_each([item.prompt for item in items], limit=limit) if template else [[i.prompt] for i in items]
    if sum(len(group) for group in grouped) > limit:
        raise _invalid("prompts", _("A batch holds at most %(limit)d prompts.") % {"limit": limit}, "too_many_prompts")
    errors = [
        RowError(
            row, "prompt", _("Too long for this model: at most %(max)d characters.") % {"max": model.max_prompt_length}
        )
        for row, group in enumerate(grouped, start=1)
        if any(len(prompt) > model.max_prompt_length for prompt in group)
    ]
    if errors:
        refuse_rows(errors)
    return grouped


def _spec_rows(
    items: list[PromptItem], grouped: list[list[str]], *, defaults: SpecRow, model: ModelInfo
) -> list[SpecRow]:
    """One row per prompt to render: the row's own settings where an import set them, the batch's elsewhere."""
    if not items:
        return [_row_with(defaults, prompt=prompt) for group in grouped for prompt in group]
    rows: list[SpecRow] = []
    errors: list[RowError] = []
    for number, (item, group) in enumerate(zip(items, grouped, strict=False), start=1):
        size = (item.width or item.height or defaults.width, item.height or item.width or defaults.height)
        if size not in model.sizes:
            errors.append(
                RowError(
                    number, "width", _("Size %(size)s is not offered by this model.") % {"size": "{}x{}".format(*size)}
                )
            )
        if item.negative_prompt and not model.supports_negative_prompt:
            errors.append(RowError(number, "negative_prompt", _("This model does not take a negative prompt.")))
        negative = defaults.negative_prompt if item.negative_prompt is None else item.negative_prompt
        seed = defaults.seed if item.seed is None else item.seed
        images = item.images or defaults.images
        rows.extend(SpecRow(prompt, negative, size[0], size[1], seed, images) for prompt in group)
    if errors:
        refuse_rows(errors)
    return rows


def _row_with(defaults: SpecRow, *, prompt: str) -> SpecRow:
    return SpecRow(prompt, defaults.negative_prompt, defaults.width, defaults.height, defaults.seed, defaults.images)


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


@dataclass(frozen=True)
class BatchEstimate:
    """What a batch request would make and cost, and the quota it would use; nothing is written."""

    prompts: int
    images: int
    cost_usd: Decimal | None
    images_left_today: int
    images_per_day: int
    images_per_batch: int
    active_batches_left: int

    @property
    def fits_quota(self) -> bool:
        return self.images <= min(self.images_left_today, self.images_per_batch) and self.active_batches_left > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "images": self.images,
            "estimated_cost_usd": None if self.cost_usd is None else str(self.cost_usd),
            "quota": {
                "images_left_today": self.images_left_today,
                "images_per_day": self.images_per_day,
                "images_per_batch": self.images_per_batch,
                "active_batches_left": self.active_batches_left,
                "fits": self.fits_quota,
            },
        }


def batch_estimate(*, owner: User, spec: BatchSpec, usage: QuotaUsage | None = None) -> BatchEstimate:
    """The images and estimated cost of a checked request, against the owner's quota today (`usage`, when read)."""
    quality = str(spec.parameters.options.get("quality") or "")
    costs = [
        cost_estimate(provider=spec.provider.name, model=spec.model.id, width=r.width, height=r.height, quality=quality)
        for r in spec.rows
    ]
    total: Decimal | None = Decimal(0)
    for cost, row in zip(costs, spec.rows, strict=True):
        total = None if total is None or cost is None else total + cost * row.images
    usage = usage if usage is not None else quota_usage(user=owner)
    return BatchEstimate(
        prompts=len(spec.rows),
        images=spec.total_images,
        cost_usd=total,
        images_left_today=usage.images_remaining,
        images_per_day=usage.limits.images_per_day,
        images_per_batch=usage.limits.images_per_batch,
        active_batches_left=usage.active_batches_remaining,
    )


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
    return _batch_write(owner=owner, spec=spec, source=source, priority=priority, prompt_seeds=prompt_seeds)[0]


def batch_create_estimated(
    *, owner: User, spec: BatchSpec, source: str = BatchSource.API, priority: int = BatchPriority.NORMAL
) -> tuple[Batch, BatchEstimate]:
    """batch_create, and the estimate the API answers with; its quota figures are the ones read under
    the create's lock (before this batch), so the owner's quota is read once, not twice."""
    batch, usage = _batch_write(owner=owner, spec=spec, source=source, priority=priority)
    return batch, batch_estimate(owner=owner, spec=spec, usage=usage)


def _batch_write(
    *, owner: User, spec: BatchSpec, source: str, priority: int, prompt_seeds: Sequence[int] | None = None
) -> tuple[Batch, QuotaUsage]:
    check_priority(user=owner, priority=priority)
    now = timezone.now()
    with transaction.atomic():
        # Locks the owner's quota row first, so concurrent submissions cannot overspend.
        usage = quota_reserve(user=owner, images=spec.total_images)
        batch = Batch.objects.create(
            owner=owner,
            name=spec.name,
            provider=spec.provider.name,
            model=spec.model.id,
            parameters=spec.parameters.to_json(),
            source=source,
            priority=priority,
            total=spec.total_images,
            created_at=now,
            webhook_url=spec.webhook_url,
        )
        if spec.webhook_url:
            webhook_secret_ensure(user=owner)  # so the owner can read it before the first delivery
        # A seed given for the batch, a row or per prompt (comparisons) is explicit, and makes the image cacheable.
        seeded = [
            (
                row,
                _seed(prompt_seeds[number] if prompt_seeds else row.seed, copy),
                bool(prompt_seeds) or row.seed is not None,
            )
            for number, row in enumerate(spec.rows)
            for copy in range(row.images)
        ]
        generations = [
            Generation(
                id=uuid.uuid4(),
                batch=batch,
                position=index,
                prompt=row.prompt,
                negative_prompt=row.negative_prompt,
                width=row.width,
                height=row.height,
                seed=seed,
                provider=spec.provider.name,
                model=spec.model.id,
                cache_key=_cache_key(owner, spec, row, seed) if explicit else "",
                created_at=now,
            )
            for index, (row, seed, explicit) in enumerate(seeded)
        ]
        Generation.objects.bulk_create(generations, batch_size=500)
        transaction.on_commit(tasks.dispatch_now)
    return batch, usage


def check_priority(*, user: User, priority: int) -> None:
    """Anyone may lower their batch's priority; `high` is for staff and users given the permission."""
    if priority not in BatchPriority.values:
        raise _invalid("priority", _("Priority must be low, normal or high."), code="invalid_priority")
    if priority == BatchPriority.HIGH and not (user.is_staff or user.has_perm("generation.submit_high_priority")):
        message = _("High priority is for staff and users given the permission; use normal or low.")
        raise _invalid("priority", message, code="priority_not_allowed")


def _cache_key(owner: User, spec: BatchSpec, row: SpecRow, seed: int) -> str:
    """The image's result-cache key (its seed is explicit); blank (never cached) with `cache: false`."""
    if not spec.parameters.cache:
        return ""
    return result_cache.cache_key(
        owner_id=owner.pk,
        provider=spec.provider.name,
        model=spec.model.id,
        prompt=row.prompt,
        negative_prompt=row.negative_prompt,
        width=row.width,
        height=row.height,
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
