"""The Stability AI provider against a local server speaking the v2beta Stable Image wire format."""

from __future__ import annotations

import base64

import pytest

from generation.providers.base import GenerationRequest, ProviderError
from generation.providers.stability import provider
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes

CORE = "/v2beta/stable-image/generate/core"
SD3 = "/v2beta/stable-image/generate/sd3"


def request(**overrides):
    values = {"prompt": "a lighthouse", "width": 1344, "height": 768, "seed": 42, "model": "core"}
    return GenerationRequest(**{**values, **overrides})


def image_reply(finish="SUCCESS", seed="42"):
    return Reply(200, png_bytes(), {"Content-Type": "image/png", "finish-reason": finish, "seed": seed})


def test_success_posts_a_multipart_form_and_reads_seed_from_headers(server):
    server.route("POST", CORE, image_reply(seed="1234"))
    images = provider.generate(request(negative_prompt="fog", parameters={"options": {"style_preset": "anime"}}))
    sent = server.requests[0]
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert sent.headers["Accept"] == "image/*"
    assert sent.headers["Authorization"] == "Bearer sk-stability"
    for field, value in [
        ("prompt", "a lighthouse"),
        ("aspect_ratio", "16:9"),
        ("negative_prompt", "fog"),
        ("style_preset", "anime"),
    ]:
        assert f'name="{field}"\r\n\r\n{value}\r\n'.encode() in sent.body
    assert images[0].data == png_bytes()
    assert images[0].seed == 1234


def test_sd3_models_use_the_sd3_endpoint_with_a_model_field(server):
    server.route("POST", SD3, image_reply())
    provider.generate(request(model="sd3.5-large", parameters={"options": {"cfg_scale": 5}}))
    assert b'name="model"\r\n\r\nsd3.5-large\r\n' in server.requests[0].body
    assert b'name="cfg_scale"\r\n\r\n5\r\n' in server.requests[0].body


def test_json_answers_are_read_too(server):
    body = {"image": base64.b64encode(png_bytes()).decode(), "finish_reason": "SUCCESS", "seed": 7}
    server.route("POST", CORE, Reply(200, body))
    assert provider.generate(request())[0].seed == 7


def test_content_filtered_finish_reason_is_a_failure_not_an_image(server):
    server.route("POST", CORE, image_reply(finish="CONTENT_FILTERED"))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == ("content_filtered", False)


def test_content_moderation_403_is_content_filtered(server):
    body = {
        "id": "abc",
        "name": "content_moderation",
        "errors": ["Your request was flagged by our content moderation system"],
    }
    server.route("POST", CORE, Reply(403, body))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert caught.value.code == "content_filtered"
    assert "flagged" in caught.value.message


@pytest.mark.parametrize(
    ("status", "name", "code", "retryable"),
    [
        (400, "bad_request", "bad_request", False),
        (401, "unauthorized", "unauthorized", False),
        (402, "payment_required", "payment_required", False),
        (500, "internal_error", "server_error", True),
    ],
)
def test_error_bodies_map_to_stable_codes(server, status, name, code, retryable):
    server.route("POST", CORE, Reply(status, {"id": "x", "name": name, "errors": ["prompt: cannot be empty"]}))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert "prompt: cannot be empty" in caught.value.message


def test_429_carries_retry_after(server):
    server.route("POST", CORE, Reply(429, {"name": "rate_limit_exceeded", "errors": ["slow"]}, {"Retry-After": "60"}))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retry_after) == ("rate_limited", 60.0)


def test_a_hanging_server_times_out(server):
    server.route("POST", CORE, Reply(200, png_bytes(), delay=3))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert caught.value.code == "timeout"


def test_a_malformed_json_body_is_invalid_response(server):
    server.route("POST", CORE, Reply(200, "{not json", {"Content-Type": "application/json"}))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert caught.value.code == "invalid_response"
