"""The `automatic1111` provider: a self-hosted Stable Diffusion WebUI (or Forge) through its /sdapi/v1 API."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_noop

from generation.providers import errors
from generation.providers.base import GeneratedImage, GenerationRequest, ModelInfo, Option, ProviderError

LABEL = "Stable Diffusion WebUI"
SIZES = (
    (512, 512), (768, 768), (1024, 1024), (512, 768), (768, 512),
    (832, 1216), (1216, 832), (896, 1152), (1152, 896), (768, 1344), (1344, 768),
)  # fmt: skip
DEFAULT_SAMPLERS = ("Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ SDE", "DDIM", "UniPC")
# The model list comes from the server; it is read at most this often per process.
MODEL_CACHE_SECONDS = 60
FAILED_LOOKUP_CACHE_SECONDS = 15
CURRENT_MODEL = "current"

_cache: dict[str, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


class Automatic1111Provider:
    name = "automatic1111"
    label = LABEL
    description = gettext_noop(
        "Your own AUTOMATIC1111 / Forge server: your checkpoints, samplers, steps and CFG scale."
    )
    offline = False
    accepts_user_key = False  # the server is the operator's; a user-supplied URL would be an SSRF hole

    def is_configured(self) -> bool:
        return bool(settings.A1111_BASE_URL)

    def models(self) -> list[ModelInfo]:
        options = _options(_cached("samplers", _fetch_samplers) or DEFAULT_SAMPLERS)
        current = ModelInfo(
            id=CURRENT_MODEL, label=gettext_noop("Checkpoint loaded on the server"), sizes=SIZES, options=options
        )
        titles = _cached("models", _fetch_models) or []
        return [current, *(ModelInfo(id=title, label=title, sizes=SIZES, options=options) for title in titles)]

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        response = _call("POST", "/sdapi/v1/txt2img", json=request_body(request))
        body = errors.json_body(response, label=LABEL)
        images = body.get("images") if isinstance(body, dict) else None
        if not isinstance(images, list) or not images:
            raise errors.invalid_response(LABEL, "no `images` list")
        return [GeneratedImage(data=_decode(images[0]), mime_type="image/png", seed=_seed(body, request.seed))]


def request_body(request: GenerationRequest) -> dict[str, Any]:
    options = request.options
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "seed": request.seed,
        "width": request.width,
        "height": request.height,
        "steps": options.get("steps", 25),
        "cfg_scale": options.get("cfg_scale", 7),
        "sampler_name": options.get("sampler", "Euler a"),
        "batch_size": 1,
        "n_iter": 1,
        "send_images": True,
        "save_images": False,
    }
    if request.model != CURRENT_MODEL:
        body["override_settings"] = {"sd_model_checkpoint": request.model}
        body["override_settings_restore_afterwards"] = False  # switching back and forth is slow
    return body


def read_error(body: Any) -> str:
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}" for d in detail)
    parts = [str(body.get(key)) for key in ("error", "detail", "errors") if body.get(key)]
    return ": ".join(parts)


def _call(method: str, path: str, **kwargs: Any) -> Any:
    if settings.A1111_AUTH:
        user, _sep, password = settings.A1111_AUTH.partition(":")
        kwargs["auth"] = (user, password)
    return errors.call(method, f"{settings.A1111_BASE_URL}{path}", label=LABEL, read_message=read_error, **kwargs)


def _options(samplers: tuple[str, ...] | list[str]) -> tuple[Option, ...]:
    return (
        Option("steps", gettext_noop("Steps"), minimum=1, maximum=150, default=25),
        Option("cfg_scale", gettext_noop("CFG scale"), minimum=1, maximum=30, integer=False, default=7),
        Option("sampler", gettext_noop("Sampler"), choices=tuple(samplers), default=samplers[0]),
    )


def _cached(key: str, fetch: Any) -> Any:
    with _cache_lock:
        stored = _cache.get(key)
        if stored and stored[0] > time.monotonic():
            return stored[1]
    try:
        value, ttl = fetch(), MODEL_CACHE_SECONDS
    except ProviderError:
        value, ttl = None, FAILED_LOOKUP_CACHE_SECONDS
    with _cache_lock:
        _cache[key] = (time.monotonic() + ttl, value)
    return value


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _fetch_models() -> list[str]:
    body = errors.json_body(_call("GET", "/sdapi/v1/sd-models", timeout=5.0), label=LABEL)
    return [str(m["title"]) for m in body if isinstance(m, dict) and m.get("title")] if isinstance(body, list) else []


def _fetch_samplers() -> list[str]:
    body = errors.json_body(_call("GET", "/sdapi/v1/samplers", timeout=5.0), label=LABEL)
    return [str(s["name"]) for s in body if isinstance(s, dict) and s.get("name")] if isinstance(body, list) else []


def _decode(value: Any) -> bytes:
    text = str(value)
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid_response(LABEL, "an image is not base64") from None


def _seed(body: dict[str, Any], fallback: int) -> int:
    info = body.get("info")
    try:
        parsed = json.loads(info) if isinstance(info, str) else info or {}
        return int(parsed.get("seed", fallback))
    except (ValueError, TypeError, AttributeError):
        return fallback


provider = Automatic1111Provider()
