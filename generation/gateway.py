"""The OpenAI-compatible gateway: an Images API request becomes a batch, is waited for, and is answered.

`POST /v1/images/generations` (generation/gateway_api.py) goes through the same checks, quotas,
queue, provider caps and history as any batch: this module only translates OpenAI's request body
into a `BatchSpec`, waits for the batch to end, and shapes what OpenAI's clients expect back.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

from generation import services
from generation.models import Batch, BatchSource, BatchStatus, Generation, GenerationStatus
from generation.output import OutputSettings, check_output
from generation.parameters import BatchParameters
from generation.providers import configured_providers
from generation.providers.base import ModelInfo, Provider
from imagegen.errors import ApplicationError, Conflict, Forbidden, NotFound, TooManyRequests, ValidationFailed

MAX_IMAGES = 10
RESPONSE_FORMATS = ("url", "b64_json")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
# OpenAI's fields that set a model option of the same name when the model has one; elsewhere only
# the values meaning "the model's default" are accepted.
MODEL_OPTIONS = {"quality": ("auto", "standard"), "style": (), "background": ("auto",), "moderation": ("auto", "low")}
# OpenAI's fields that need nothing from us: `user`/`safety_identifier` identify OpenAI's end users;
# a call that is not streamed has no partial images.
IGNORED_FIELDS = ("user", "safety_identifier", "partial_images")
# `seed` is ImageGen's own addition (OpenAI has none): reproducible images, which the result cache can reuse.
KNOWN_FIELDS = frozenset(
    {"prompt", "model", "n", "size", "response_format", "output_format", "output_compression", "stream", "seed"}
    | set(MODEL_OPTIONS)
    | set(IGNORED_FIELDS)
)
SIZE_PATTERN = re.compile(r"^(\d{1,5})x(\d{1,5})$")
# The values OpenAI's response shape has for `quality` and `background` (others are left out).
RESPONSE_QUALITIES = ("low", "medium", "high")
RESPONSE_BACKGROUNDS = ("transparent", "opaque")
EXTENSION_FORMATS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}
URL_SALT = "generation.gateway.image-url"
# What the platform's own fields are called in OpenAI's request, for error messages' `param`.
OPENAI_PARAMS = {"prompts": "prompt", "images_per_prompt": "n", "provider": "model", "width": "size", "height": "size"}


class GatewayTimeout(ApplicationError):
    """The batch did not end in GATEWAY_TIMEOUT_SECONDS; it goes on and stays in the history."""

    status_code = 504
    default_code = "timeout"


class GenerationFailed(ApplicationError):
    """Every image of the call failed at the provider (after the platform's own retries and fail-overs)."""

    status_code = 502
    default_code = "provider_error"


class GatewayBusy(TooManyRequests):
    """Every waiting slot of this web process is taken; nothing was submitted, so trying again is safe."""

    status_code = 503
    default_code = "gateway_busy"


BUSY_RETRY_AFTER_SECONDS = 5


class _WaitingCalls:
    """Calls of this process waiting for their batch: each holds a web server thread, so at most
    GATEWAY_MAX_WAITING do, and the portal, the API and health checks keep threads of their own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self.lock:
            if self.count >= settings.GATEWAY_MAX_WAITING:
                message = _("The server is busy with other image calls; try again in a few seconds.")
                raise GatewayBusy(message, retry_after=BUSY_RETRY_AFTER_SECONDS)
            self.count += 1
        try:
            yield
        finally:
            with self.lock:
                self.count -= 1


waiting_calls = _WaitingCalls()


@dataclass(frozen=True)
class ImagesRequest:
    """A checked `images.generate` call: the batch to write and how to answer."""

    spec: services.BatchSpec
    response_format: str


def _invalid(param: str, message: str, code: str = "invalid_value") -> ValidationFailed:
    return ValidationFailed(message, code=code, details={param: [message]})


def model_resolve(*, name: str, user_id: int | None) -> tuple[Provider, ModelInfo]:
    """`<provider>/<model>`, or a model id only one configured provider offers; empty: the default."""
    providers = configured_providers(user_id=user_id)
    if not name:
        provider = providers.get(settings.DEFAULT_PROVIDER) or next(iter(providers.values()), None)
        if provider is None:
            raise _invalid("model", _("No image provider is configured."), code="model_not_found")
        return provider, provider.models()[0]
    provider_name, _slash, model_id = name.partition("/")
    if provider_name in providers:  # model ids may hold a slash too (replicate/black-forest-labs/flux-dev)
        provider = providers[provider_name]
        model = next((m for m in provider.models() if m.id == model_id), None)
        if model is None:
            raise _model_not_found(name)
        return provider, model
    matches = [(p, m) for p in providers.values() for m in p.models() if m.id == name]
    if not matches:
        raise _model_not_found(name)
    if len(matches) > 1:
        message = _("Model %(name)r is offered by several providers; name one of: %(choices)s.") % {
            "name": name,
            "choices": ", ".join(f"{p.name}/{m.id}" for p, m in matches),
        }
        raise _invalid("model", message, code="ambiguous_model")
    return matches[0]


def _model_not_found(name: str) -> ValidationFailed:
    message = _("The model %(name)r does not exist or is not configured; GET /v1/models lists them.") % {"name": name}
    return _invalid("model", message, code="model_not_found")


def models_offered(*, user_id: int | None) -> list[dict[str, Any]]:
    """Every model of the configured providers (and the user's own keys), in OpenAI's list shape."""
    return [_model_object(p, m) for p in configured_providers(user_id=user_id).values() for m in p.models()]


def model_describe(*, name: str, user_id: int | None) -> dict[str, Any]:
    try:
        provider, model = model_resolve(name=name, user_id=user_id)
    except ValidationFailed as error:
        raise NotFound(error.message, code=error.code, details=error.details) from None
    return _model_object(provider, model)


def _model_object(provider: Provider, model: ModelInfo) -> dict[str, Any]:
    # Providers do not publish when a model was made; 0 says "unknown" in OpenAI's integer field.
    return {"id": f"{provider.name}/{model.id}", "object": "model", "created": 0, "owned_by": provider.name}


def images_request_check(*, body: Any, user_id: int | None) -> ImagesRequest:
    """Check an OpenAI Images request body and turn it into a batch spec; nothing is written."""
    if not isinstance(body, dict):
        raise ValidationFailed(_("The request body must be a JSON object."), code="invalid_request_body")
    unknown = sorted(str(name) for name in body if name not in KNOWN_FIELDS)
    if unknown:
        message = _("Unknown parameter: %(name)r.") % {"name": unknown[0]}
        raise _invalid(unknown[0], message, code="unknown_parameter")
    values = {name: value for name, value in body.items() if value is not None}
    if values.get("stream") not in (None, False):
        raise _invalid("stream", _("Streaming is not supported; leave stream unset."), code="unsupported_parameter")
    prompt = _prompt(values)
    provider, model = model_resolve(name=_text(values, "model"), user_id=user_id)
    n = _whole_number(values, "n", default=1, minimum=1, maximum=MAX_IMAGES)
    width, height = _size(values)
    output_format = _choice(values, "output_format", OUTPUT_FORMATS, default="")
    compression = _whole_number(values, "output_compression", default=None, minimum=0, maximum=100)
    options = _model_options(model, values)
    seed = _whole_number(values, "seed", default=None, minimum=0, maximum=services.MAX_SEED)
    prompts, per_prompt = _copies(prompt, n, seeded=seed is not None)
    spec = _platform_check(
        provider=provider.name,
        model=model.id,
        prompts=prompts,
        images_per_prompt=per_prompt,
        width=width,
        height=height,
        options=options,
        seed=seed,
        user_id=user_id,
    )
    parameters = dataclasses.replace(
        spec.parameters,
        output_format=output_format,
        output_compression=compression,
        output=_output_settings(output_format, compression, (spec.width, spec.height)) or spec.parameters.output,
    )
    return ImagesRequest(
        spec=dataclasses.replace(spec, parameters=parameters),
        response_format=_choice(values, "response_format", RESPONSE_FORMATS, default="b64_json"),
    )


def _output_settings(output_format: str, compression: int | None, size: tuple[int, int]) -> OutputSettings | None:
    """OpenAI's output_format and output_compression as the batch's post-processing (a JPEG/WebP rendition)."""
    if output_format not in ("jpeg", "webp"):
        return None
    requested: dict[str, Any] = {"format": output_format}
    if compression is not None:
        requested["quality"] = max(1, compression)  # OpenAI's 0 is the smallest file; Pillow's scale starts at 1
    return check_output(requested, source_size=size)


def _copies(prompt: str, n: int, *, seeded: bool) -> tuple[list[str], int]:
    """Prompts and images per prompt for n images: up to MAX_IMAGES_PER_PROMPT copies of one prompt,
    beyond it the prompt written n times (whose copies would all share a seed: refused with one)."""
    if n <= settings.MAX_IMAGES_PER_PROMPT:
        return [prompt], n
    if seeded:
        message = _("With a seed, n is at most %(max)d.") % {"max": settings.MAX_IMAGES_PER_PROMPT}
        raise _invalid("n", message, code="integer_above_max_value")
    return [prompt] * n, 1


def _platform_check(**request: Any) -> services.BatchSpec:
    """The platform's own checks; a field they name is renamed to OpenAI's parameter."""
    try:
        return services.check_batch_request(**request)
    except ValidationFailed as error:
        details = {OPENAI_PARAMS.get(name, name): problems for name, problems in error.details.items()}
        raise ValidationFailed(error.message, code=error.code, details=details) from None


def _prompt(values: dict[str, Any]) -> str:
    if "prompt" not in values:
        raise _invalid("prompt", _("Missing required parameter: 'prompt'."), code="missing_required_parameter")
    prompt = _text(values, "prompt").strip()
    if not prompt:
        raise _invalid("prompt", _("The prompt must not be empty."), code="empty_string")
    if "\x00" in prompt:  # no text has one, and PostgreSQL cannot store it
        raise _invalid("prompt", _("The prompt must not contain NUL characters."))
    return prompt


def _text(values: dict[str, Any], name: str) -> str:
    value = values.get(name, "")
    if not isinstance(value, str):
        raise _invalid(name, _("%(name)s must be a string.") % {"name": name}, code="invalid_type")
    return value


def _whole_number(values: dict[str, Any], name: str, *, default: Any, minimum: int, maximum: int) -> Any:
    if name not in values:
        return default
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(name, _("%(name)s must be a whole number.") % {"name": name}, code="invalid_type")
    if not minimum <= value <= maximum:
        message = _("%(name)s must be from %(min)d to %(max)d; it was %(value)d.") % {
            "name": name,
            "min": minimum,
            "max": maximum,
            "value": value,
        }
        code = "integer_below_min_value" if value < minimum else "integer_above_max_value"
        raise _invalid(name, message, code=code)
    return value


def _choice(values: dict[str, Any], name: str, choices: tuple[str, ...], *, default: str) -> str:
    if name not in values:
        return default
    value = values[name]
    if value not in choices:
        message = _("%(name)s must be one of: %(choices)s.") % {"name": name, "choices": ", ".join(choices)}
        raise _invalid(name, message)
    return str(value)


def _size(values: dict[str, Any]) -> tuple[int | None, int | None]:
    """'WxH' (checked against the model's sizes by the platform), or the model's default for 'auto'."""
    size = _text(values, "size")
    if size in ("", "auto"):
        return None, None
    match = SIZE_PATTERN.match(size)
    if match is None:
        raise _invalid("size", _("size must be 'auto' or WIDTHxHEIGHT, e.g. 1024x1024."))
    return int(match.group(1)), int(match.group(2))


def _model_options(model: ModelInfo, values: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's quality, style, background and moderation (and output format) as the model's options."""
    options: dict[str, Any] = {}
    for name in (*MODEL_OPTIONS, "output_format", "output_compression"):
        if name not in values:
            continue
        option = model.option(name)
        if option is not None:
            try:
                options[name] = option.check(values[name])
            except ValueError as error:
                message = _("%(name)s must be %(expected)s.") % {"name": name, "expected": error}
                raise _invalid(name, message) from None
        elif name in MODEL_OPTIONS and values[name] not in MODEL_OPTIONS[name]:
            message = _("Model %(model)s does not take %(name)s %(value)r.") % {
                "model": model.id,
                "name": name,
                "value": values[name],
            }
            raise _invalid(name, message, code="unsupported_value")
    return options


def images_generate(*, owner: User, request: ImagesRequest) -> Batch:
    """Write the call's batch (quotas, queue and history as any batch); it starts after commit."""
    return services.batch_create(owner=owner, spec=request.spec, source=BatchSource.OPENAI_API)


def batch_resume(*, owner: User, batch_id: uuid.UUID) -> Batch:
    """The batch an earlier call with the same Idempotency-Key made, to wait for again."""
    batch = Batch.objects.filter(pk=batch_id, owner=owner, deleted_at__isnull=True).first()
    if batch is None:
        message = _("The batch %(batch)s that this Idempotency-Key made has been deleted.") % {"batch": batch_id}
        raise NotFound(message)
    return batch


def batch_wait(*, batch: Batch, timeout: float, poll: float) -> Batch:
    """The batch once it has ended; GatewayTimeout (the batch goes on) when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        batch.refresh_from_db()
        if not batch.is_active:
            return batch
        left = deadline - time.monotonic()
        if left <= 0:
            message = _(
                "The images were not ready within %(seconds)d seconds. They are still being made as batch "
                "%(batch)s: see GET /api/v1/batches/%(batch)s/ or the portal."
            ) % {"seconds": timeout, "batch": batch.pk}
            raise GatewayTimeout(message, details={"batch_id": str(batch.pk)})
        time.sleep(min(poll, left))


def images_made(*, batch: Batch) -> list[Generation]:
    """The images of an ended batch; when there is none, the error that says why."""
    generations = list(batch.generations.order_by("position"))
    made = [g for g in generations if g.status == GenerationStatus.SUCCEEDED]
    if made:
        return made
    if batch.status == BatchStatus.CANCELLED:
        raise Conflict(_("The batch was cancelled before any image was made."), code="cancelled")
    failed = next((g for g in generations if g.status == GenerationStatus.FAILED), None)
    code = failed.error_code if failed and failed.error_code else "provider_error"
    message = (failed.error_message if failed else "") or _("The provider could not make the image.")
    if code == "content_filtered":
        raise _invalid("prompt", message, code="content_policy_violation")
    if failed is not None and failed.error_permanent:
        raise ValidationFailed(message, code=code)
    raise GenerationFailed(message, code=code, details={"batch_id": str(batch.pk)})


def images_response(
    *, batch: Batch, generations: list[Generation], response_format: str, url_for: Callable[[str], str]
) -> dict[str, Any]:
    """OpenAI's ImagesResponse: `created`, `data` and, where OpenAI has them, size, format, quality."""
    parameters = batch.parameters or {}
    body: dict[str, Any] = {
        "created": int(batch.created_at.timestamp()),
        "data": [_image_object(g, response_format, url_for) for g in generations],
        "size": f"{generations[0].width}x{generations[0].height}",
        "output_format": image_format(generations[0]),
    }
    options = parameters.get("options") or {}
    if options.get("quality") in RESPONSE_QUALITIES:
        body["quality"] = options["quality"]
    if options.get("background") in RESPONSE_BACKGROUNDS:
        body["background"] = options["background"]
    return body


def _image_object(generation: Generation, response_format: str, url_for: Callable[[str], str]) -> dict[str, Any]:
    item: dict[str, Any] = {"revised_prompt": generation.metadata.get("revised_prompt") or generation.prompt}
    if response_format == "url":
        item["url"] = url_for(image_url_token(generation))
    else:
        with default_storage.open(image_file(generation), "rb") as stored:
            item["b64_json"] = base64.b64encode(stored.read()).decode("ascii")
    return item


def image_file(generation: Generation) -> str:
    """The stored file the gateway hands out for an image (the one place to choose a derived file):
    the rendition in the requested output_format when there is one, else the original PNG."""
    wanted = BatchParameters.from_json(generation.batch.parameters).output
    if wanted is not None:
        rendition = generation.renditions.filter(settings_hash=wanted.settings_hash).first()
        if rendition is not None and rendition.file.name:
            return rendition.file.name
    return generation.image.name or ""


def image_format(generation: Generation) -> str:
    extension = image_file(generation).rpartition(".")[2].lower()
    return EXTENSION_FORMATS.get(extension, extension)


def image_url_token(generation: Generation) -> str:
    """A signed, expiring reference to one image, for a URL that works without the bearer token."""
    return signing.dumps(str(generation.pk), salt=URL_SALT)


def image_from_token(*, token: str) -> Generation:
    """The image a token of `image_url_token` names, while it is valid and the image still exists."""
    try:
        generation_id = signing.loads(token, salt=URL_SALT, max_age=settings.GATEWAY_URL_TTL_SECONDS)
    except signing.SignatureExpired:
        raise Forbidden(_("This image link has expired; generate the image again."), code="url_expired") from None
    except signing.BadSignature:
        raise NotFound(_("No such image.")) from None
    generation = (
        Generation.objects.select_related("batch")
        .filter(pk=generation_id, status=GenerationStatus.SUCCEEDED)
        .exclude(image="")
        .first()
    )
    if generation is None:
        raise NotFound(_("No such image."))
    return generation
