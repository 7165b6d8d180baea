"""The OpenAI-compatible gateway's mapping: request body to batch, model names, waiting, answer shape."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import pytest
from django.core import signing
from django.core.files.storage import default_storage
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from generation import gateway, services
from generation.gateway import GatewayBusy, GatewayTimeout, GenerationFailed
from generation.models import BatchStatus
from generation.parameters import BatchParameters
from imagegen.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes, server

__all__ = ["server"]

pytestmark = pytest.mark.django_db

OPENAI_PATH = "/v1/images/generations"


def check(**body: Any) -> gateway.ImagesRequest:
    return gateway.images_request_check(body={"prompt": "a red fox", **body}, user_id=None)


def refused(**body: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        gateway.images_request_check(body=body, user_id=None)
    return caught.value


def param_of(error: ValidationFailed) -> str:
    [param] = error.details
    return param


# --- model names --------------------------------------------------------------------------------


def test_a_model_named_with_its_provider_resolves():
    provider, model = gateway.model_resolve(name="local/procedural-v1", user_id=None)
    assert (provider.name, model.id) == ("local", "procedural-v1")


def test_a_bare_model_id_offered_by_one_provider_resolves():
    provider, model = gateway.model_resolve(name="procedural-v1", user_id=None)
    assert (provider.name, model.id) == ("local", "procedural-v1")


def test_model_ids_with_a_slash_resolve_with_and_without_their_provider(server):
    provider, model = gateway.model_resolve(name="replicate/black-forest-labs/flux-dev", user_id=None)
    assert (provider.name, model.id) == ("replicate", "black-forest-labs/flux-dev")
    provider, model = gateway.model_resolve(name="black-forest-labs/flux-dev", user_id=None)
    assert (provider.name, model.id) == ("replicate", "black-forest-labs/flux-dev")


def test_no_model_means_the_default_providers_first_model(settings):
    settings.DEFAULT_PROVIDER = "local"
    provider, model = gateway.model_resolve(name="", user_id=None)
    assert (provider.name, model.id) == ("local", "procedural-v1")


@pytest.mark.parametrize("name", ["nope", "local/nope", "openai/dall-e-3", "local"])
def test_an_unknown_or_unconfigured_model_is_model_not_found(name):
    with pytest.raises(ValidationFailed) as caught:
        gateway.model_resolve(name=name, user_id=None)
    assert caught.value.code == "model_not_found" and param_of(caught.value) == "model"


def test_a_model_id_two_providers_offer_is_ambiguous_and_lists_both(server):
    server.route("GET", "/sdapi/v1/sd-models", Reply(200, [{"title": "core", "model_name": "core"}]))
    with pytest.raises(ValidationFailed) as caught:
        gateway.model_resolve(name="core", user_id=None)
    assert caught.value.code == "ambiguous_model" and param_of(caught.value) == "model"
    assert "automatic1111/core" in caught.value.message and "stability/core" in caught.value.message
    provider, model = gateway.model_resolve(name="stability/core", user_id=None)
    assert (provider.name, model.id) == ("stability", "core")


def test_the_model_list_has_every_configured_model_in_openais_shape(server):
    offered = gateway.models_offered(user_id=None)
    ids = [item["id"] for item in offered]
    assert {"local/procedural-v1", "openai/dall-e-3", "stability/core", "replicate/black-forest-labs/flux-dev"} <= set(
        ids
    )
    assert len(ids) == len(set(ids))
    assert offered[0] == {"id": "local/procedural-v1", "object": "model", "created": 0, "owned_by": "local"}


def test_describing_an_unknown_model_is_a_404():
    assert gateway.model_describe(name="procedural-v1", user_id=None)["id"] == "local/procedural-v1"
    with pytest.raises(NotFound) as caught:
        gateway.model_describe(name="openai/dall-e-3", user_id=None)
    assert caught.value.code == "model_not_found"


# --- the request body ---------------------------------------------------------------------------


def test_a_minimal_request_is_one_image_of_the_default_model_answered_in_base64():
    checked = check()
    assert checked.response_format == "b64_json"
    spec = checked.spec
    assert (spec.provider.name, spec.model.id, spec.prompts, spec.images_per_prompt) == (
        "local",
        "procedural-v1",
        ["a red fox"],
        1,
    )
    assert (spec.width, spec.height) == spec.model.default


def test_n_copies_of_the_prompt_and_beyond_the_per_prompt_limit_the_prompt_written_n_times(settings):
    settings.MAX_IMAGES_PER_PROMPT = 8
    spec = check(n=3).spec
    assert (spec.prompts, spec.images_per_prompt) == (["a red fox"], 3)
    spec = check(n=10).spec
    assert (spec.prompts, spec.images_per_prompt) == (["a red fox"] * 10, 1)


def test_a_seed_makes_the_images_reproducible_one_seed_after_another(settings):
    settings.MAX_IMAGES_PER_PROMPT = 8
    spec = check(seed=42, n=2).spec
    assert (spec.seed, spec.images_per_prompt) == (42, 2)
    assert check().spec.seed is None
    assert refused(prompt="x", seed=-1).code == "integer_below_min_value"
    error = refused(prompt="x", seed=42, n=9)  # nine copies of one line would all get seed 42
    assert (error.code, param_of(error)) == ("integer_above_max_value", "n")


@pytest.mark.parametrize(
    ("n", "code"),
    [(0, "integer_below_min_value"), (11, "integer_above_max_value"), (True, "invalid_type"), ("2", "invalid_type")],
)
def test_n_is_a_whole_number_from_1_to_10(n, code):
    error = refused(prompt="x", n=n)
    assert error.code == code and param_of(error) == "n"


def test_size_is_one_of_the_models_sizes_or_auto():
    spec = check(size="256x256").spec
    assert (spec.width, spec.height) == (256, 256)
    assert (check(size="auto").spec.width, check(size="auto").spec.height) == check().spec.model.default
    for size in ("100x100", "big", "1024", 1024):
        error = refused(prompt="x", size=size)
        assert param_of(error) == "size", size
    assert "256x256" in refused(prompt="x", size="100x100").message


def test_the_prompt_is_required_text_within_the_models_limit(settings):
    assert refused().code == "missing_required_parameter"
    assert param_of(refused(prompt="   ")) == "prompt"
    assert refused(prompt=["a", "b"]).code == "invalid_type"
    assert param_of(refused(prompt="a red\x00fox")) == "prompt"
    settings.MAX_PROMPT_LENGTH = 10
    error = refused(prompt="a prompt longer than ten characters")
    assert param_of(error) == "prompt" and error.code == "prompt_too_long"


def test_unknown_parameters_are_refused_by_name_as_openai_does():
    error = refused(prompt="x", colour="red")
    assert (error.code, param_of(error)) == ("unknown_parameter", "colour")


def test_streaming_is_refused_but_an_explicit_false_or_null_is_fine():
    error = refused(prompt="x", stream=True)
    assert param_of(error) == "stream"
    assert check(stream=False, n=None, size=None, user="end-user-7", model=None).spec.images_per_prompt == 1


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        gateway.images_request_check(body=["a red fox"], user_id=None)
    assert caught.value.code == "invalid_request_body"


def test_response_format_is_url_or_b64_json():
    assert check(response_format="url").response_format == "url"
    assert param_of(refused(prompt="x", response_format="png")) == "response_format"


def test_output_format_and_compression_are_kept_in_the_batch_parameters():
    parameters = BatchParameters.from_json(check(output_format="webp", output_compression=80).spec.parameters.to_json())
    assert (parameters.output_format, parameters.output_compression) == ("webp", 80)
    assert parameters.options == {}  # the local renderer has no such options
    assert param_of(refused(prompt="x", output_format="gif")) == "output_format"
    assert refused(prompt="x", output_compression=101).code == "integer_above_max_value"


def test_quality_style_and_background_become_the_models_own_options(server):
    spec = check(model="openai/dall-e-3", quality="hd", style="natural", size="1024x1792").spec
    assert spec.parameters.options == {"quality": "hd", "style": "natural"}
    spec = check(model="gpt-image-1", quality="high", background="transparent", output_format="webp").spec
    assert spec.parameters.options == {"quality": "high", "background": "transparent", "output_format": "webp"}
    error = refused(prompt="x", model="dall-e-3", quality="ultra")
    assert param_of(error) == "quality"


def test_a_model_without_an_option_takes_only_openais_default_value_for_it():
    assert check(quality="auto", background="auto", moderation="low").spec.parameters.options == {}
    for field, value in (("quality", "hd"), ("style", "vivid"), ("background", "transparent")):
        error = refused(prompt="x", **{field: value})
        assert (error.code, param_of(error)) == ("unsupported_value", field)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
FIELDS = st.sampled_from([*sorted(gateway.KNOWN_FIELDS), "colour"])


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=st.dictionaries(FIELDS, JSON_VALUES | st.sampled_from(["256x256", "url", "png", "auto", 2]), max_size=6))
def test_any_json_body_is_either_a_batch_or_a_400_naming_a_parameter(body):
    try:
        checked = gateway.images_request_check(body={"prompt": "a red fox", **body}, user_id=None)
    except ValidationFailed as error:
        assert error.status_code == 400 and len(error.details) == 1
    else:
        assert 1 <= len(checked.spec.prompts) * checked.spec.images_per_prompt <= 10


# --- waiting and answering ----------------------------------------------------------------------


def test_waiting_for_an_ended_batch_returns_it_at_once(make_batch):
    batch = make_batch(prompts=["a red fox"])
    started = time.monotonic()
    assert gateway.batch_wait(batch=batch, timeout=5, poll=1).status == BatchStatus.COMPLETED
    assert time.monotonic() - started < 0.5


def test_a_batch_not_ended_in_time_times_out_and_goes_on(make_batch):
    batch = make_batch(prompts=["a red fox"], run=False)
    with pytest.raises(GatewayTimeout) as caught:
        gateway.batch_wait(batch=batch, timeout=0.1, poll=0.02)
    assert caught.value.status_code == 504
    assert caught.value.details == {"batch_id": str(batch.pk)}
    assert str(batch.pk) in caught.value.message
    batch.refresh_from_db()
    assert batch.status == BatchStatus.QUEUED  # nothing the user asked for is dropped


def test_the_answer_has_openais_shape_with_the_stored_images(make_batch):
    batch = make_batch(prompts=["a red fox"], images_per_prompt=2, width=256, height=256)
    generations = gateway.images_made(batch=batch)
    body = gateway.images_response(batch=batch, generations=generations, response_format="b64_json", url_for=str)
    assert set(body) == {"created", "data", "size", "output_format"}
    assert body["created"] == int(batch.created_at.timestamp())
    assert (body["size"], body["output_format"]) == ("256x256", "png")
    assert len(body["data"]) == 2
    for item, generation in zip(body["data"], generations, strict=True):
        assert item["revised_prompt"] == "a red fox"
        data = base64.b64decode(item["b64_json"])
        with default_storage.open(gateway.image_file(generation), "rb") as stored:
            assert data == stored.read()
        assert Image.open(io.BytesIO(data)).size == (256, 256)


def test_url_answers_carry_signed_links_to_each_image(make_batch):
    batch = make_batch(prompts=["a red fox"])
    [generation] = gateway.images_made(batch=batch)
    body = gateway.images_response(
        batch=batch, generations=[generation], response_format="url", url_for=lambda token: f"https://x/{token}"
    )
    [item] = body["data"]
    assert "b64_json" not in item
    token = item["url"].removeprefix("https://x/")
    assert gateway.image_from_token(token=token) == generation


def test_quality_and_background_are_reported_when_openais_shape_has_the_value(server, run_request):
    server.route("POST", OPENAI_PATH, Reply(200, {"created": 1, "data": [{"b64_json": b64_png()}]}))
    checked = check(model="openai/gpt-image-1", quality="high", background="opaque", size="1024x1024")
    batch = run_request(checked)
    body = gateway.images_response(
        batch=batch, generations=gateway.images_made(batch=batch), response_format="b64_json", url_for=str
    )
    assert (body["quality"], body["background"]) == ("high", "opaque")
    assert server.requests[0].json()["quality"] == "high"


def test_the_revised_prompt_is_the_providers_when_it_sends_one(server, run_request):
    reply = {"created": 1, "data": [{"b64_json": b64_png(), "revised_prompt": "A red fox in deep snow"}]}
    server.route("POST", OPENAI_PATH, Reply(200, reply))
    batch = run_request(check(model="dall-e-3"))
    body = gateway.images_response(
        batch=batch, generations=gateway.images_made(batch=batch), response_format="b64_json", url_for=str
    )
    assert body["data"][0]["revised_prompt"] == "A red fox in deep snow"
    assert "quality" not in body


def test_a_partial_batch_answers_the_images_that_were_made(make_batch):
    batch = make_batch(prompts=["a red fox", "a blue cat"])
    failed = batch.generations.get(position=1)
    failed.status, failed.error_code, failed.image = "failed", "timeout", ""
    failed.save()
    assert [g.position for g in gateway.images_made(batch=batch)] == [0]


def test_a_batch_whose_images_all_failed_at_the_provider_is_a_502(make_batch, settings):
    settings.LOCAL_PROVIDER_FAIL_RATE = 1.0
    batch = make_batch(prompts=["a red fox"])
    assert batch.status == BatchStatus.FAILED
    with pytest.raises(GenerationFailed) as caught:
        gateway.images_made(batch=batch)
    assert caught.value.status_code == 502 and caught.value.details == {"batch_id": str(batch.pk)}


def test_a_prompt_the_providers_moderation_refused_is_a_content_policy_violation(server, run_request):
    refusal = {
        "error": {"message": "Your request was rejected by the safety system.", "code": "content_policy_violation"}
    }
    server.route("POST", OPENAI_PATH, Reply(400, refusal))
    batch = run_request(check(model="dall-e-2", size="256x256"))
    with pytest.raises(ValidationFailed) as caught:
        gateway.images_made(batch=batch)
    assert caught.value.code == "content_policy_violation" and param_of(caught.value) == "prompt"
    assert "safety system" in caught.value.message


def test_a_batch_cancelled_before_any_image_is_a_conflict(make_batch):
    batch = services.batch_cancel(batch=make_batch(prompts=["a red fox"], run=False))
    with pytest.raises(Conflict) as caught:
        gateway.images_made(batch=batch)
    assert caught.value.code == "cancelled"


def test_at_most_gateway_max_waiting_calls_wait_at_once(settings):
    settings.GATEWAY_MAX_WAITING = 2
    with gateway.waiting_calls.slot(), gateway.waiting_calls.slot():
        with pytest.raises(GatewayBusy) as caught, gateway.waiting_calls.slot():
            pass
        assert (caught.value.status_code, caught.value.retry_after) == (503, gateway.BUSY_RETRY_AFTER_SECONDS)
    with gateway.waiting_calls.slot():  # a call that ended, even by an error, gave its slot back
        assert gateway.waiting_calls.count == 1
    assert gateway.waiting_calls.count == 0


# --- signed image links -------------------------------------------------------------------------


def test_an_image_link_expires_after_its_lifetime(make_batch, settings, monkeypatch):
    settings.GATEWAY_URL_TTL_SECONDS = 60
    generation = make_batch(prompts=["a red fox"]).generations.get()
    assert gateway.image_from_token(token=gateway.image_url_token(generation)) == generation
    old = signing.b62_encode(int(time.time()) - 61)
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: old)
    expired = gateway.image_url_token(generation)
    with pytest.raises(Forbidden) as caught:
        gateway.image_from_token(token=expired)
    assert caught.value.code == "url_expired"


def test_a_tampered_link_or_a_deleted_image_is_not_found(make_batch):
    batch = make_batch(prompts=["a red fox"])
    generation = batch.generations.get()
    token = gateway.image_url_token(generation)
    with pytest.raises(NotFound):
        gateway.image_from_token(token=token[:-2] + "xx")
    batch.delete()
    with pytest.raises(NotFound):
        gateway.image_from_token(token=token)


# --- helpers ------------------------------------------------------------------------------------


def b64_png() -> str:
    return base64.b64encode(png_bytes(size=(16, 16))).decode()


@pytest.fixture
def run_request(owner, run_queue):
    """Write a checked request's batch as the gateway does and let the synchronous queue render it."""

    def run(checked: gateway.ImagesRequest) -> Any:
        with run_queue():
            batch = gateway.images_generate(owner=owner, request=checked)
        batch.refresh_from_db()
        return batch

    return run
