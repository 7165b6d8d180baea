"""The `replicate` provider: Replicate's predictions API (create, poll until done, download, cancel)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_noop

from generation.providers import errors
from generation.providers.base import GeneratedImage, GenerationRequest, ModelInfo, Option, ProviderError
from imagegen import http

LABEL = "Replicate"
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
TERMINAL = ("succeeded", "failed", "canceled", "aborted")
MODELS = (
    ModelInfo(
        id="black-forest-labs/flux-schnell",
        label="FLUX.1 [schnell]",
        sizes=tuple(ASPECT_RATIOS),
        supports_negative_prompt=False,
        max_prompt_length=10000,
        options=(Option("num_inference_steps", gettext_noop("Steps"), minimum=1, maximum=4, default=4),),
    ),
    ModelInfo(
        id="black-forest-labs/flux-dev",
        label="FLUX.1 [dev]",
        sizes=tuple(ASPECT_RATIOS),
        supports_negative_prompt=False,
        max_prompt_length=10000,
        options=(
            Option("num_inference_steps", gettext_noop("Steps"), minimum=1, maximum=50, default=28),
            Option("guidance", gettext_noop("Guidance"), minimum=0, maximum=10, integer=False, default=3),
        ),
    ),
    ModelInfo(
        id="black-forest-labs/flux-1.1-pro",
        label="FLUX1.1 [pro]",
        sizes=tuple(ASPECT_RATIOS),
        supports_negative_prompt=False,
        max_prompt_length=10000,
        options=(Option("safety_tolerance", gettext_noop("Safety tolerance"), minimum=1, maximum=6, default=2),),
    ),
)


class ReplicateProvider:
    name = "replicate"
    label = LABEL
    description = gettext_noop("Models hosted on Replicate (FLUX), run as predictions and polled until done.")
    offline = False
    accepts_user_key = True

    def is_configured(self) -> bool:
        return bool(settings.REPLICATE_API_TOKEN)

    def models(self) -> list[ModelInfo]:
        return list(MODELS)

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        token = request.api_key or settings.REPLICATE_API_TOKEN
        prediction = _call(
            "POST",
            f"/v1/models/{request.model}/predictions",
            token,
            json={"input": prediction_input(request)},
            headers={"Prefer": "wait"},
        )
        prediction = _wait(prediction, token, request)
        urls = _output_urls(prediction)
        metadata = {"prediction_id": prediction.get("id"), "metrics": prediction.get("metrics") or {}}
        return [GeneratedImage(data=_download(urls[0]), mime_type="image/png", seed=request.seed, metadata=metadata)]


def prediction_input(request: GenerationRequest) -> dict[str, Any]:
    return {
        "prompt": request.prompt,
        "aspect_ratio": ASPECT_RATIOS.get((request.width, request.height), "1:1"),
        "seed": request.seed,
        "output_format": "png",
        **({"num_outputs": 1} if "pro" not in request.model else {}),
        **request.options,
    }


def read_error(body: Any) -> str:
    return str(body.get("detail") or body.get("title") or body.get("error") or "")


def _call(method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    url = f"{settings.REPLICATE_BASE_URL}{path}"
    response = errors.call(method, url, label=LABEL, read_message=read_error, headers=headers, **kwargs)
    body = errors.json_body(response, label=LABEL)
    if not isinstance(body, dict) or not body.get("id") or not body.get("status"):
        raise errors.invalid_response(LABEL, "not a prediction")
    return body


def _wait(prediction: dict[str, Any], token: str, request: GenerationRequest) -> dict[str, Any]:
    """Poll until the prediction ends; a cancelled batch or a timeout cancels it upstream."""
    deadline = time.monotonic() + settings.REPLICATE_MAX_WAIT_SECONDS
    # The poll URL is rebuilt from the id: the token is only ever sent to the configured base URL.
    path = f"/v1/predictions/{prediction['id']}"
    while prediction["status"] not in TERMINAL:
        if request.is_cancelled():
            _cancel(path, token)
            raise ProviderError("cancelled", "Cancelled with its batch; the prediction was cancelled.", retryable=False)
        if time.monotonic() > deadline:
            _cancel(path, token)
            raise ProviderError("timeout", f"{LABEL}: the prediction did not finish in time.", retryable=True)
        time.sleep(settings.REPLICATE_POLL_SECONDS)
        prediction = _call("GET", path, token)
    return _check_finished(prediction)


def _cancel(path: str, token: str) -> None:
    with contextlib.suppress(ProviderError):  # best effort: the prediction may have ended meanwhile
        _call("POST", f"{path}/cancel", token)


def _check_finished(prediction: dict[str, Any]) -> dict[str, Any]:
    status, error = prediction["status"], str(prediction.get("error") or "")
    if status == "succeeded":
        return prediction
    if status in ("canceled", "aborted"):
        raise ProviderError("cancelled", f"{LABEL}: the prediction was {status} upstream.", retryable=False)
    if any(marker in error.lower() for marker in errors.CONTENT_POLICY_MARKERS):
        raise ProviderError("content_filtered", f"{LABEL}: {error}", retryable=False)
    raise ProviderError(
        "prediction_failed", f"{LABEL}: the prediction failed: {error or 'no reason given'}", retryable=False
    )


def _output_urls(prediction: dict[str, Any]) -> list[str]:
    output = prediction.get("output")
    urls = [output] if isinstance(output, str) else output
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise errors.invalid_response(LABEL, "a succeeded prediction without output URLs")
    return urls


def _download(url: str) -> bytes:
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.partition(",")[2], validate=True)
        except (binascii.Error, ValueError):
            raise errors.invalid_response(LABEL, "output data URL is not base64") from None
    try:
        # Output files live on a delivery host that came from the response: the SSRF guard applies.
        response = http.request("GET", url, timeout=errors.provider_timeout())
    except http.OutboundError as exc:
        raise errors.from_outbound(exc, label=LABEL) from exc
    if not response.is_success:
        raise ProviderError(
            "download_failed", f"{LABEL}: output download answered {response.status_code}", retryable=True
        )
    return response.content


provider = ReplicateProvider()
