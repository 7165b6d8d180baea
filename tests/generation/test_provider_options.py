"""Providers listed to users with their models and settings, and model settings checked on submit."""

from __future__ import annotations

import pytest

from tests.generation.providerfakes import server

__all__ = ["server"]


def test_only_configured_providers_are_listed_with_their_options_and_limits(api, settings):
    settings.OPENAI_API_KEY = "sk-x"
    providers = {p["name"]: p for p in api.get("/api/v1/providers/").json()}
    assert set(providers) == {"local", "openai"}
    dalle3 = next(m for m in providers["openai"]["models"] if m["id"] == "dall-e-3")
    assert dalle3["capabilities"]["options"]["quality"]["choices"] == ["standard", "hd"]
    assert dalle3["capabilities"]["max_prompt_length"] == 4000
    assert providers["openai"]["limits"] == {"concurrency": 8, "rpm": 50}


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"quality": "ultra"}, "invalid_option"),
        ({"steps": 20}, "unknown_option"),
    ],
)
def test_model_settings_are_checked_before_anything_is_queued(api, server, options, code):
    body = {"provider": "openai", "model": "dall-e-3", "prompts": ["x"], "options": options}
    response = api.post("/api/v1/batches/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert "options" in response.json()["error"]["details"]


def test_prompt_length_is_enforced_per_model_before_any_call(api, server):
    body = {"provider": "openai", "model": "dall-e-2", "prompts": ["x" * 1001]}
    response = api.post("/api/v1/batches/", body, format="json")
    assert response.json()["error"]["code"] == "prompt_too_long"
    assert server.requests == []


def test_numeric_settings_are_range_checked(api, server):
    body = {"provider": "automatic1111", "prompts": ["x"], "width": 512, "height": 512, "options": {"steps": 500}}
    response = api.post("/api/v1/batches/", body, format="json")
    assert response.json()["error"]["code"] == "invalid_option"
    assert "1 to 150" in response.json()["error"]["message"]


def test_the_new_batch_form_passes_model_settings_and_fallbacks(client, owner, server):
    client.force_login(owner)
    form = {
        "model": "openai:dall-e-3",
        "prompts": "a fox",
        "size": "1024x1024",
        "images_per_prompt": 1,
        "option_quality": "hd",
        "option_style": "natural",
        "fallbacks": ["local:procedural-v1"],
    }
    response = client.post("/batches/new/", form)
    assert response.status_code == 302
    from generation.models import Batch

    batch = Batch.objects.get()
    assert batch.parameters["options"] == {"quality": "hd", "style": "natural"}
    assert batch.parameters["fallbacks"][0]["provider"] == "local"


def test_the_new_batch_form_shows_a_bad_setting_as_a_form_error(client, owner, server):
    client.force_login(owner)
    form = {
        "model": "openai:dall-e-3",
        "prompts": "a fox",
        "size": "1024x1024",
        "images_per_prompt": 1,
        "option_quality": "max",
    }
    response = client.post("/batches/new/", form)
    assert response.status_code == 200
    assert "Option quality must be one of standard, hd." in response.content.decode()


@pytest.mark.parametrize("value", ["inf", "1e999", "nan", "-inf"])
@pytest.mark.parametrize("option", ["steps", "cfg_scale"])
def test_non_finite_numbers_are_an_invalid_option(api, server, option, value):
    body = {"provider": "automatic1111", "prompts": ["x"], "width": 512, "height": 512, "options": {option: value}}
    response = api.post("/api/v1/batches/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_option"
