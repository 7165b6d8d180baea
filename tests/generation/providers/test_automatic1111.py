"""The AUTOMATIC1111 provider against a local server speaking the /sdapi/v1 wire format."""

from __future__ import annotations

import base64
import json

import pytest

from generation.providers import automatic1111
from generation.providers.automatic1111 import provider
from generation.providers.base import GenerationRequest, ProviderError
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes

TXT2IMG = "/sdapi/v1/txt2img"


def request(**overrides):
    values = {"prompt": "a castle", "width": 512, "height": 768, "seed": 99, "model": "current"}
    return GenerationRequest(**{**values, **overrides})


def ok(seed=99):
    info = json.dumps({"seed": seed, "all_seeds": [seed]})
    return Reply(200, {"images": [base64.b64encode(png_bytes()).decode()], "parameters": {}, "info": info})


def test_success_sends_steps_cfg_and_sampler_and_reads_the_seed_from_info(server):
    server.route("POST", TXT2IMG, ok(seed=31337))
    options = {"steps": 30, "cfg_scale": 6.5, "sampler": "DPM++ 2M"}
    images = provider.generate(request(negative_prompt="blurry", parameters={"options": options}))
    body = server.requests[0].json()
    assert (body["steps"], body["cfg_scale"], body["sampler_name"]) == (30, 6.5, "DPM++ 2M")
    assert (body["width"], body["height"], body["seed"], body["negative_prompt"]) == (512, 768, 99, "blurry")
    assert "override_settings" not in body
    assert images[0].seed == 31337


def test_a_named_checkpoint_is_selected_with_override_settings(server):
    server.route("POST", TXT2IMG, ok())
    provider.generate(request(model="sdxl.safetensors [abc]"))
    assert server.requests[0].json()["override_settings"] == {"sd_model_checkpoint": "sdxl.safetensors [abc]"}


def test_basic_auth_is_sent_when_configured(server, settings):
    settings.A1111_AUTH = "alice:secret"
    server.route("POST", TXT2IMG, ok())
    provider.generate(request())
    assert server.requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"alice:secret").decode()


def test_models_and_samplers_come_from_the_server(server):
    server.route("GET", "/sdapi/v1/sd-models", Reply(200, [{"title": "sdxl.safetensors [abc]", "model_name": "sdxl"}]))
    server.route("GET", "/sdapi/v1/samplers", Reply(200, [{"name": "Euler a"}, {"name": "DPM++ 2M"}]))
    models = provider.models()
    assert [m.id for m in models] == ["current", "sdxl.safetensors [abc]"]
    assert models[1].option("sampler").choices == ("Euler a", "DPM++ 2M")


def test_an_unreachable_server_still_offers_the_loaded_checkpoint(settings):
    settings.A1111_BASE_URL = "http://127.0.0.1:1"
    automatic1111.clear_cache()
    assert [m.id for m in provider.models()] == ["current"]


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (
            Reply(422, {"detail": [{"loc": ["body", "steps"], "msg": "value is not a valid integer"}]}),
            "unprocessable",
            False,
        ),
        (Reply(401, {"detail": "Not authenticated"}), "unauthorized", False),
        (Reply(500, {"error": "OutOfMemoryError", "detail": "", "errors": "CUDA out of memory"}), "server_error", True),
        (Reply(429, {"detail": "busy"}, {"Retry-After": "3"}), "rate_limited", True),
        (Reply(400, {"detail": "bad"}), "bad_request", False),
    ],
)
def test_errors_map_to_stable_codes(server, reply, code, retryable):
    server.route("POST", TXT2IMG, reply)
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


def test_validation_errors_name_the_field(server):
    server.route("POST", TXT2IMG, Reply(422, {"detail": [{"loc": ["body", "steps"], "msg": "not an integer"}]}))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert "body.steps: not an integer" in caught.value.message


def test_a_hanging_server_times_out(server):
    server.route("POST", TXT2IMG, Reply(200, {}, delay=3))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert caught.value.code == "timeout"


@pytest.mark.parametrize("body", [{"images": []}, {"images": ["%%%"]}, "garbage"])
def test_malformed_bodies_are_invalid_response(server, body):
    server.route("POST", TXT2IMG, Reply(200, body, {"Content-Type": "application/json"}))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert caught.value.code == "invalid_response"
