"""The `openai` provider: OpenAI's Images API, or any endpoint that speaks it (OPENAI_BASE_URL)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_noop

from generation.providers import errors
from generation.providers.base import GeneratedImage, GenerationRequest, ModelInfo, Option, ProviderError
from imagegen import http

LABEL = "OpenAI"
GPT_IMAGE_OPTIONS = (
    Option("quality", gettext_noop("Quality"), choices=("auto", "low", "medium", "high"), default="auto"),
    Option("background", gettext_noop("Background"), choices=("auto", "opaque", "transparent"), default="auto"),
    Option("output_format", gettext_noop("Output format"), choices=("png", "jpeg", "webp"), default="png"),
)
GPT_IMAGE_SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))
MODELS = (
    ModelInfo(
        id="gpt-image-1",
        label="GPT Image 1",
        sizes=GPT_IMAGE_SIZES,
        supports_seed=False,
        supports_negative_prompt=False,
        max_prompt_length=32000,
        options=GPT_IMAGE_OPTIONS,
    ),
    ModelInfo(
        id="gpt-image-1-mini",
        label="GPT Image 1 mini",
        sizes=GPT_IMAGE_SIZES,
        supports_seed=False,
        supports_negative_prompt=False,
        max_prompt_length=32000,
        options=GPT_IMAGE_OPTIONS,
    ),
    ModelInfo(
        id="dall-e-3",
        label="DALL·E 3",
        sizes=((1024, 1024), (1792, 1024), (1024, 1792)),
        supports_seed=False,
        supports_negative_prompt=False,
        max_prompt_length=4000,
        options=(
            Option("quality", gettext_noop("Quality"), choices=("standard", "hd"), default="standard"),
            Option("style", gettext_noop("Style"), choices=("vivid", "natural"), default="vivid"),
        ),
    ),
    ModelInfo(
        id="dall-e-2",
        label="DALL·E 2",
        sizes=((512, 512), (256, 256), (1024, 1024)),
        supports_seed=False,
        supports_negative_prompt=False,
        max_prompt_length=1000,
    ),
)


class OpenAIProvider:
    name = "openai"
    label = LABEL
    description = gettext_noop("OpenAI Images API (GPT Image, DALL·E 3, DALL·E 2) or a compatible endpoint.")
    offline = False
    accepts_user_key = True

    def is_configured(self) -> bool:
        return bool(settings.OPENAI_API_KEY)

    def models(self) -> list[ModelInfo]:
        return list(MODELS)

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        response = errors.call(
            "POST",
            f"{settings.OPENAI_BASE_URL}/images/generations",
            label=LABEL,
            read_message=read_error,
            headers=_headers(request.api_key or settings.OPENAI_API_KEY),
            json=request_body(request),
        )
        body = errors.json_body(response, label=LABEL)
        return [_image(item, body, request) for item in _items(body)[:1]]


def request_body(request: GenerationRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "prompt": request.prompt,
        "n": 1,
        "size": f"{request.width}x{request.height}",
    }
    if not request.model.startswith("gpt-image"):
        body["response_format"] = "b64_json"  # GPT Image models always answer in base64
    model = next((m for m in MODELS if m.id == request.model), None)
    for name, value in request.options.items():
        if model is not None and model.option(name) is not None and value != "auto":
            body[name] = value
    return body


def read_error(body: Any) -> str:
    error = body.get("error") or {}
    if not isinstance(error, dict):
        return str(error)
    return str(error.get("message") or error.get("code") or "")


def _headers(api_key: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key}"}
    if settings.OPENAI_ORGANIZATION:
        headers["OpenAI-Organization"] = settings.OPENAI_ORGANIZATION
    return headers


def _items(body: Any) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data or not all(isinstance(item, dict) for item in data):
        raise errors.invalid_response(LABEL, "no `data` list of images")
    return data


def _image(item: dict[str, Any], body: dict[str, Any], request: GenerationRequest) -> GeneratedImage:
    metadata: dict[str, Any] = {}
    if item.get("revised_prompt"):
        metadata["revised_prompt"] = item["revised_prompt"]
    if isinstance(body.get("usage"), dict):
        metadata["usage"] = body["usage"]
    return GeneratedImage(data=_bytes(item), mime_type="image/png", seed=None, metadata=metadata)


def _bytes(item: dict[str, Any]) -> bytes:
    if item.get("b64_json"):
        try:
            return base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise errors.invalid_response(LABEL, "`b64_json` is not base64") from None
    if item.get("url"):
        # Some compatible servers ignore response_format; their URL is not operator-configured.
        try:
            download = http.request("GET", str(item["url"]), timeout=errors.provider_timeout())
        except http.OutboundError as exc:
            raise errors.from_outbound(exc, label=LABEL) from exc
        if not download.is_success:
            raise ProviderError(
                "download_failed", f"{LABEL}: image download answered {download.status_code}", retryable=True
            )
        return download.content
    raise errors.invalid_response(LABEL, "an image item has neither `b64_json` nor `url`")


provider = OpenAIProvider()
