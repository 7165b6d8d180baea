"""The `stability` provider: Stability AI's v2beta Stable Image API (Core, Ultra, SD 3.5)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext_noop

from generation.providers import errors
from generation.providers.base import GeneratedImage, GenerationRequest, ModelInfo, Option, ProviderError

LABEL = "Stability AI"
# The API takes an aspect ratio, not a size; these are the sizes it renders for each ratio.
ASPECT_RATIOS = {
    (1024, 1024): "1:1",
    (1344, 768): "16:9",
    (768, 1344): "9:16",
    (1216, 832): "3:2",
    (832, 1216): "2:3",
    (1088, 896): "5:4",
    (896, 1088): "4:5",
    (1536, 640): "21:9",
    (640, 1536): "9:21",
}
MAX_SEED = 4294967294
STYLE_PRESETS = (
    "none", "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami",
    "photographic", "pixel-art", "tile-texture",
)  # fmt: skip
FORMAT = Option("output_format", gettext_noop("Output format"), choices=("png", "jpeg", "webp"), default="png")
SD3_OPTIONS = (FORMAT, Option("cfg_scale", gettext_noop("CFG scale"), minimum=1, maximum=10, integer=False, default=4))
MODELS = (
    ModelInfo(
        id="core",
        label="Stable Image Core",
        sizes=tuple(ASPECT_RATIOS),
        max_prompt_length=10000,
        options=(FORMAT, Option("style_preset", gettext_noop("Style preset"), choices=STYLE_PRESETS, default="none")),
    ),
    ModelInfo(
        id="ultra", label="Stable Image Ultra", sizes=tuple(ASPECT_RATIOS), max_prompt_length=10000, options=(FORMAT,)
    ),
    ModelInfo(
        id="sd3.5-large", label="SD 3.5 Large", sizes=tuple(ASPECT_RATIOS), max_prompt_length=10000, options=SD3_OPTIONS
    ),
    ModelInfo(
        id="sd3.5-large-turbo",
        label="SD 3.5 Large Turbo",
        sizes=tuple(ASPECT_RATIOS),
        max_prompt_length=10000,
        options=SD3_OPTIONS,
    ),
    ModelInfo(
        id="sd3.5-medium",
        label="SD 3.5 Medium",
        sizes=tuple(ASPECT_RATIOS),
        max_prompt_length=10000,
        options=SD3_OPTIONS,
    ),
)


class StabilityProvider:
    name = "stability"
    label = LABEL
    description = gettext_noop("Stability AI hosted API: Stable Image Core, Ultra and Stable Diffusion 3.5.")
    offline = False
    accepts_user_key = True

    def is_configured(self) -> bool:
        return bool(settings.STABILITY_API_KEY)

    def models(self) -> list[ModelInfo]:
        return list(MODELS)

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        endpoint = "sd3" if request.model.startswith("sd3") else request.model
        response = errors.call(
            "POST",
            f"{settings.STABILITY_BASE_URL}/v2beta/stable-image/generate/{endpoint}",
            label=LABEL,
            read_message=read_error,
            headers={"Authorization": f"Bearer {request.api_key or settings.STABILITY_API_KEY}", "Accept": "image/*"},
            files=form_fields(request),
        )
        return [_image(response, request)]


def form_fields(request: GenerationRequest) -> dict[str, tuple[None, str]]:
    """The multipart form (httpx sends `(None, value)` items as plain fields)."""
    fields: dict[str, Any] = {
        "prompt": request.prompt,
        "aspect_ratio": ASPECT_RATIOS.get((request.width, request.height), "1:1"),
        "seed": request.seed % (MAX_SEED + 1),
        "output_format": "png",
    }
    if request.negative_prompt and request.model != "sd3.5-large-turbo":
        fields["negative_prompt"] = request.negative_prompt
    if request.model.startswith("sd3"):
        fields["model"] = request.model
        fields["mode"] = "text-to-image"
    for name, value in request.options.items():
        if not (name == "style_preset" and value == "none"):
            fields[name] = value
    return {name: (None, str(value)) for name, value in fields.items()}


def read_error(body: Any) -> str:
    messages = body.get("errors") or []
    text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
    name = body.get("name") or ""
    return f"{text} ({name})" if name and text else text or name or str(body.get("message", ""))


def _image(response: httpx.Response, request: GenerationRequest) -> GeneratedImage:
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    if content_type == "application/json":
        body = errors.json_body(response, label=LABEL)
        finish, seed, data = body.get("finish_reason"), body.get("seed"), _decode(body.get("image"))
    else:
        finish, seed, data = response.headers.get("finish-reason"), response.headers.get("seed"), response.content
    if finish == "CONTENT_FILTERED":
        raise ProviderError("content_filtered", f"{LABEL} filtered the image for its content policy.", retryable=False)
    if finish not in (None, "SUCCESS"):
        raise ProviderError("generation_failed", f"{LABEL} stopped with finish reason {finish}.", retryable=True)
    if not data:
        raise errors.invalid_response(LABEL, "empty image")
    return GeneratedImage(data=data, mime_type=content_type or "image/png", seed=_seed(seed, request.seed))


def _decode(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value or ""), validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid_response(LABEL, "`image` is not base64") from None


def _seed(value: Any, fallback: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return fallback


provider = StabilityProvider()
