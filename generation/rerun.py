""" "Use these settings": a batch's (or one image's) request as the New batch form's initial values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from generation.models import Batch, Generation
from generation.output import OutputSettings
from generation.parameters import BatchParameters


@dataclass(frozen=True)
class Rerun:
    initial: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    imported_rows: int = 0
    output: OutputSettings | None = None  # the post-processing settings, for the Output fieldset


def rerun_from_batch(batch: Batch) -> Rerun:
    """Exactly what was typed: template lines (or imported rows), options, fallbacks, seed, size, priority."""
    parameters = BatchParameters.from_json(batch.parameters)
    initial = _common(batch, parameters)
    lines = list(parameters.prompt_lines)
    if not lines and not parameters.items:  # batches stored before the typed lines were kept
        prompts = batch.generations.order_by("position").values_list("prompt", flat=True)
        lines = list(dict.fromkeys(prompts[: settings.MAX_PROMPTS_PER_BATCH * settings.MAX_IMAGES_PER_PROMPT]))
    initial.update(
        name=batch.name,
        prompts="\n".join(lines),
        template=parameters.template,
        negative_prompt=parameters.negative_prompt,
        images_per_prompt=parameters.images_per_prompt,
        seed=parameters.seed,
    )
    if parameters.items:
        initial["items_json"] = json.dumps([item.to_json() for item in parameters.items], ensure_ascii=False)
    return Rerun(
        initial=initial,
        options=dict(parameters.options),
        imported_rows=len(parameters.items),
        output=parameters.output,
    )


def rerun_from_generation(generation: Generation) -> Rerun:
    """One image again: its own prompt, negative prompt, seed and size, with its batch's model and settings."""
    parameters = BatchParameters.from_json(generation.batch.parameters)
    initial = _common(generation.batch, parameters)
    initial.update(
        prompts=generation.prompt,
        template=False,
        negative_prompt=generation.negative_prompt,
        images_per_prompt=1,
        seed=generation.seed,
        size=f"{generation.width}x{generation.height}",
    )
    return Rerun(initial=initial, options=dict(parameters.options), output=parameters.output)


def _common(batch: Batch, parameters: BatchParameters) -> dict[str, Any]:
    return {
        "model": f"{batch.provider}:{batch.model}",
        "size": f"{parameters.width}x{parameters.height}",
        "priority": batch.priority,
        "fallbacks": [f"{fallback.provider}:{fallback.model}" for fallback in parameters.fallbacks],
        "cache": parameters.cache,
        "webhook_url": batch.webhook_url,
    }
