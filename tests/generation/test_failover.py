"""Failover: a generation that exhausts its retries on transient errors moves to the batch's next provider."""

from __future__ import annotations

from generation.services import check_batch_request
from tests.fakeserver import Reply
from tests.generation.providerfakes import server

__all__ = ["server"]
PATH = "/v1/images/generations"


def failing_over_batch(make_batch, fallbacks):
    return make_batch(
        provider="openai", model="dall-e-2", prompts=["a red fox"], width=512, height=512, fallbacks=fallbacks
    )


def test_exhausted_transient_errors_move_the_generation_to_the_fallback(server, make_batch, settings):
    server.route("POST", PATH, Reply(503, {"error": {"message": "overloaded"}}))
    batch = failing_over_batch(make_batch, ["local"])
    generation = batch.generations.get()
    assert (batch.status, generation.status) == ("completed", "succeeded")
    assert (generation.provider, generation.model, generation.provider_index) == ("local", "procedural-v1", 1)
    assert generation.attempts == settings.GENERATION_MAX_ATTEMPTS + 1
    [move] = generation.metadata["failovers"]
    assert (move["from"], move["to"], move["error_code"]) == ("openai:dall-e-2", "local:procedural-v1", "server_error")
    assert batch.parameters["fallbacks"] == [{"provider": "local", "model": "procedural-v1", "options": {}}]


def test_a_permanent_error_does_not_fail_over(server, make_batch):
    server.route("POST", PATH, Reply(401, {"error": {"message": "Incorrect API key"}}))
    generation = failing_over_batch(make_batch, ["local"]).generations.get()
    assert (generation.status, generation.provider, generation.error_code) == ("failed", "openai", "unauthorized")
    assert "failovers" not in generation.metadata


def test_the_api_takes_fallbacks_and_shows_the_move(server, api, django_capture_on_commit_callbacks):
    server.route("POST", PATH, Reply(500, {"error": {"message": "boom"}}))
    body = {
        "provider": "openai",
        "model": "dall-e-2",
        "prompts": ["x"],
        "width": 512,
        "height": 512,
        "fallbacks": ["local"],
    }
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/v1/batches/", body, format="json")
    assert created.status_code == 201
    generations = api.get(created.json()["urls"]["generations"]).json()["results"]
    assert generations[0]["provider"] == "local"
    assert generations[0]["metadata"]["failovers"][0]["to"] == "local:procedural-v1"


def test_unknown_fallback_is_a_clear_validation_error(api, server):
    body = {
        "provider": "openai",
        "model": "dall-e-2",
        "prompts": ["x"],
        "width": 512,
        "height": 512,
        "fallbacks": ["nope"],
    }
    response = api.post("/api/v1/batches/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_provider"
    assert "fallbacks" in response.json()["error"]["details"]


def test_a_fallback_that_cannot_render_the_size_is_refused(api, server):
    body = {"provider": "local", "prompts": ["x"], "width": 256, "height": 256, "fallbacks": ["openai:dall-e-3"]}
    response = api.post("/api/v1/batches/", body, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "unsuitable_fallback")


def test_the_batchs_own_model_cannot_be_its_fallback(server):
    try:
        check_batch_request(provider="local", prompts=["x"], fallbacks=["local"])
    except Exception as error:
        assert error.code == "duplicate_fallback"
    else:
        raise AssertionError("expected a validation error")
