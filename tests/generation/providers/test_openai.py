"""The OpenAI provider against a local server speaking the Images API wire format."""

from __future__ import annotations

import base64

import pytest

from generation.providers.base import GenerationRequest, ProviderError
from generation.providers.openai import provider
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes

PATH = "/v1/images/generations"


def request(**overrides):
    values = {"prompt": "a red fox", "width": 1024, "height": 1024, "seed": 1, "model": "dall-e-3"}
    return GenerationRequest(**{**values, **overrides})


def ok(**extra):
    return Reply(200, {"created": 1, "data": [{"b64_json": base64.b64encode(png_bytes()).decode(), **extra}]})


def error(status, message, code=None, headers=None):
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return Reply(status, body, headers=headers or {})


def test_success_sends_the_images_api_request_and_keeps_the_revised_prompt(server):
    server.route("POST", PATH, ok(revised_prompt="A red fox in snow"))
    images = provider.generate(request(parameters={"options": {"quality": "hd", "style": "natural"}}))
    sent = server.requests[0]
    assert sent.headers["Authorization"] == "Bearer sk-test-operator"
    assert sent.json() == {
        "model": "dall-e-3",
        "prompt": "a red fox",
        "n": 1,
        "size": "1024x1024",
        "response_format": "b64_json",
        "quality": "hd",
        "style": "natural",
    }
    assert images[0].data == png_bytes()
    assert images[0].metadata["revised_prompt"] == "A red fox in snow"


def test_gpt_image_gets_no_response_format_and_reports_token_usage(server):
    reply = ok()
    reply.body["usage"] = {"input_tokens": 10, "output_tokens": 4160, "total_tokens": 4170}
    server.route("POST", PATH, reply)
    images = provider.generate(request(model="gpt-image-1", parameters={"options": {"background": "transparent"}}))
    assert "response_format" not in server.requests[0].json()
    assert server.requests[0].json()["background"] == "transparent"
    assert images[0].metadata["usage"]["output_tokens"] == 4160


def test_a_users_own_key_is_sent_instead_of_the_operators(server):
    server.route("POST", PATH, ok())
    provider.generate(request(api_key="sk-user-own-1234"))
    assert server.requests[0].headers["Authorization"] == "Bearer sk-user-own-1234"


def test_url_output_from_a_compatible_server_is_downloaded(server):
    server.route("GET", "/files/1.png", Reply(200, png_bytes("blue"), {"Content-Type": "image/png"}))
    server.route("POST", PATH, Reply(200, {"data": [{"url": f"{server.url}/files/1.png"}]}))
    assert provider.generate(request())[0].data == png_bytes("blue")


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (error(400, "Invalid size", "invalid_size"), "bad_request", False),
        (error(401, "Incorrect API key provided"), "unauthorized", False),
        (error(403, "Country not supported"), "forbidden", False),
        (error(500, "The server had an error"), "server_error", True),
        (error(503, "Overloaded"), "server_error", True),
        (
            error(400, "Your request was rejected by the safety system.", "content_policy_violation"),
            "content_filtered",
            False,
        ),
        (error(400, "Rejected", "moderation_blocked"), "content_filtered", False),
    ],
)
def test_error_statuses_map_to_stable_codes_with_the_providers_message(server, reply, code, retryable):
    server.route("POST", PATH, reply)
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert reply.body["error"]["message"] in caught.value.message


def test_429_is_rate_limited_and_carries_retry_after(server):
    server.route("POST", PATH, error(429, "Rate limit reached", headers={"Retry-After": "7"}))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable, caught.value.retry_after) == ("rate_limited", True, 7.0)


def test_retry_after_ms_is_honoured(server):
    server.route("POST", PATH, error(429, "slow down", headers={"retry-after-ms": "1500"}))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert caught.value.retry_after == 1.5


def test_a_hanging_server_is_a_retryable_timeout(server):
    server.route("POST", PATH, Reply(200, {"data": []}, delay=3))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, "<html>gateway</html>", {"Content-Type": "text/html"}),
        Reply(200, {"data": []}),
        Reply(200, {"data": [{"b64_json": "!!!not base64"}]}),
        Reply(200, {"unexpected": True}),
    ],
)
def test_a_malformed_body_is_a_retryable_invalid_response(server, reply):
    server.route("POST", PATH, reply)
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == ("invalid_response", True)


def test_an_unreachable_server_is_a_retryable_connection_error(settings):
    settings.OPENAI_API_KEY = "sk-x"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:1/v1"
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == ("connection_error", True)


def test_only_configured_with_a_key(settings):
    settings.OPENAI_API_KEY = ""
    assert not provider.is_configured()
    settings.OPENAI_API_KEY = "sk-1"
    assert provider.is_configured()
