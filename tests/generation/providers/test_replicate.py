"""The Replicate provider against a local server speaking the predictions API: create, poll, cancel."""

from __future__ import annotations

import pytest

from generation.providers.base import GenerationRequest, ProviderError
from generation.providers.replicate import provider
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes

MODEL = "black-forest-labs/flux-schnell"
CREATE = f"/v1/models/{MODEL}/predictions"
POLL = "/v1/predictions/p1"


def request(**overrides):
    values = {"prompt": "a koi pond", "width": 1024, "height": 1024, "seed": 5, "model": MODEL}
    return GenerationRequest(**{**values, **overrides})


def prediction(server, status, output=None, error=None):
    return {
        "id": "p1",
        "status": status,
        "output": output,
        "error": error,
        "urls": {"get": f"{server.url}{POLL}", "cancel": f"{server.url}{POLL}/cancel"},
        "metrics": {"predict_time": 0.4},
    }


def serve_output(server):
    server.route("GET", "/delivery/out-0.png", Reply(200, png_bytes(), {"Content-Type": "image/png"}))
    return [f"{server.url}/delivery/out-0.png"]


def test_a_prediction_finished_within_prefer_wait_is_downloaded(server):
    output = serve_output(server)
    server.route("POST", CREATE, Reply(201, prediction(server, "succeeded", output)))
    images = provider.generate(request(parameters={"options": {"num_inference_steps": 2}}))
    sent = server.requests[0]
    assert sent.headers["Prefer"] == "wait"
    assert sent.headers["Authorization"] == "Bearer r8_test"
    assert sent.json()["input"] == {
        "prompt": "a koi pond", "aspect_ratio": "1:1", "seed": 5, "output_format": "png", "num_outputs": 1,
        "num_inference_steps": 2,
    }  # fmt: skip
    assert images[0].data == png_bytes()
    assert images[0].metadata["prediction_id"] == "p1"


def test_a_running_prediction_is_polled_until_it_succeeds(server):
    output = serve_output(server)
    states = iter(["processing", "processing", "succeeded"])
    server.route("POST", CREATE, Reply(201, prediction(server, "starting")))
    server.route(
        "GET",
        POLL,
        lambda _r: Reply(200, prediction(server, (s := next(states)), output if s == "succeeded" else None)),
    )
    assert provider.generate(request())[0].data == png_bytes()
    assert [r.path for r in server.requests].count(POLL) == 3


def test_a_cancelled_batch_cancels_the_prediction_upstream(server):
    server.route("POST", CREATE, Reply(201, prediction(server, "processing")))
    server.route("GET", POLL, Reply(200, prediction(server, "processing")))
    server.route("POST", f"{POLL}/cancel", Reply(200, prediction(server, "canceled")))
    polls = iter([False, False, True])
    with pytest.raises(ProviderError) as caught:
        provider.generate(request(is_cancelled=lambda: next(polls)))
    assert caught.value.code == "cancelled"
    assert ("POST", f"{POLL}/cancel") in [(r.method, r.path) for r in server.requests]


def test_a_prediction_that_never_finishes_is_cancelled_and_retryable(server, settings):
    settings.REPLICATE_MAX_WAIT_SECONDS = 0.2
    server.route("POST", CREATE, Reply(201, prediction(server, "processing")))
    server.route("GET", POLL, Reply(200, prediction(server, "processing")))
    server.route("POST", f"{POLL}/cancel", Reply(200, prediction(server, "canceled")))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)
    assert server.requests[-1].path == f"{POLL}/cancel"


def test_an_nsfw_failure_is_content_filtered(server):
    error = "NSFW content detected. Try running it again, or try a different prompt."
    server.route("POST", CREATE, Reply(201, prediction(server, "failed", error=error)))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == ("content_filtered", False)


def test_a_failed_prediction_keeps_the_models_message(server):
    server.route("POST", CREATE, Reply(201, prediction(server, "failed", error="CUDA error: device-side assert")))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert caught.value.code == "prediction_failed"
    assert "device-side assert" in caught.value.message


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (
            Reply(
                401,
                {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401},
            ),
            "unauthorized",
            False,
        ),
        (
            Reply(422, {"title": "Input validation failed", "detail": "- input.seed: Invalid type", "status": 422}),
            "unprocessable",
            False,
        ),
        (
            Reply(
                429,
                {"title": "Too Many Requests", "detail": "Request was throttled.", "status": 429},
                {"Retry-After": "4"},
            ),
            "rate_limited",
            True,
        ),
        (Reply(500, "Internal Server Error"), "server_error", True),
        (Reply(400, {"detail": "bad input"}), "bad_request", False),
    ],
)
def test_errors_on_create_map_to_stable_codes(server, reply, code, retryable):
    server.route("POST", CREATE, reply)
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


def test_a_hanging_create_times_out(server):
    server.route("POST", CREATE, Reply(201, {}, delay=3))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert caught.value.code == "timeout"


@pytest.mark.parametrize("body", [{"status": "succeeded"}, "nope"])
def test_a_malformed_prediction_is_invalid_response(server, body):
    server.route("POST", CREATE, Reply(201, body, {"Content-Type": "application/json"}))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert caught.value.code == "invalid_response"


def test_output_urls_go_through_the_ssrf_guard(server, settings):
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = []
    output = serve_output(server)
    server.route("POST", CREATE, Reply(201, prediction(server, "succeeded", output)))
    with pytest.raises(ProviderError) as caught:
        provider.generate(request())
    assert (caught.value.code, caught.value.retryable) == ("blocked_url", False)
