"""Estimated costs: the price table, per-generation cost, batch totals and the user's usage."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from generation.costs import cost_estimate
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes, server

__all__ = ["server"]


@pytest.mark.parametrize(
    ("provider", "model", "size", "quality", "expected"),
    [
        ("openai", "dall-e-2", (512, 512), "", "0.01800"),
        ("openai", "dall-e-3", (1024, 1024), "hd", "0.08000"),
        ("openai", "dall-e-3", (1792, 1024), "hd", "0.12000"),
        ("openai", "dall-e-3", (1792, 1024), "standard", "0.08000"),
        ("openai", "gpt-image-1", (1024, 1024), "low", "0.01100"),
        ("stability", "ultra", (1024, 1024), "", "0.08000"),
        ("replicate", "black-forest-labs/flux-schnell", (1024, 1024), "", "0.00300"),
        ("local", "procedural-v1", (512, 512), "", "0.00000"),
    ],
)
def test_prices_go_from_the_most_specific_key_to_the_provider(provider, model, size, quality, expected):
    cost = cost_estimate(provider=provider, model=model, width=size[0], height=size[1], quality=quality)
    assert cost == Decimal(expected)


def test_reported_tokens_win_over_the_per_image_price():
    usage = {"input_tokens": 100, "output_tokens": 1000}
    cost = cost_estimate(provider="openai", model="gpt-image-1", width=1024, height=1024, usage=usage)
    assert cost == Decimal("0.04050")  # 100 x $5/M + 1000 x $40/M


def test_an_unknown_provider_has_no_estimate_and_the_table_is_overridable(settings):
    assert cost_estimate(provider="elsewhere", model="m", width=1, height=1) is None
    settings.PROVIDER_PRICES = {"elsewhere": 0.5}
    assert cost_estimate(provider="elsewhere", model="m", width=1, height=1) == Decimal("0.5")


def test_a_generation_records_quality_and_cost_and_the_batch_and_usage_add_up(
    server, api, django_capture_on_commit_callbacks
):
    image = base64.b64encode(png_bytes()).decode()
    server.route("POST", "/v1/images/generations", Reply(200, {"data": [{"b64_json": image}]}))
    body = {"provider": "openai", "model": "dall-e-3", "prompts": ["a", "b"], "options": {"quality": "hd"}}
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/v1/batches/", body, format="json").json()
    batch = api.get(created["urls"]["self"]).json()
    assert (batch["status"], batch["cost_usd"]) == ("completed", "0.16000")
    generation = api.get(created["urls"]["generations"]).json()["results"][0]
    assert (generation["quality"], generation["cost_usd"]) == ("hd", "0.08000")
    usage = api.get("/api/v1/usage/").json()
    assert (usage["images"], usage["cost_usd"]) == (2, "0.16000")
    assert usage["by_model"] == [{"provider": "openai", "model": "dall-e-3", "images": 2, "cost_usd": "0.16000"}]


def test_usage_counts_only_the_callers_images(make_batch, other_api):
    make_batch()
    assert other_api.get("/api/v1/usage/").json() == {"images": 0, "cost_usd": "0.00000", "by_model": []}


def test_usage_needs_authentication(anon_api, db):
    assert anon_api.get("/api/v1/usage/").status_code == 401


def test_the_portal_shows_batch_and_user_totals(make_batch, client, owner):
    batch = make_batch()
    client.force_login(owner)
    assert "2 images made, estimated US$0.0000 in total." in client.get("/batches/").content.decode()
    assert '<dd id="count-cost">US$0.0000</dd>' in client.get(f"/batches/{batch.pk}/").content.decode()


def test_every_model_of_every_provider_is_priced_at_its_default_quality_and_every_size():
    from generation.providers import all_providers

    unpriced = [
        (provider.name, model.id, size)
        for provider in all_providers().values()
        for model in provider.models()
        for size in model.sizes
        if cost_estimate(provider=provider.name, model=model.id, width=size[0], height=size[1]) is None
    ]
    assert unpriced == []


def test_dall_e_3_without_a_chosen_quality_costs_what_standard_costs():
    default = cost_estimate(provider="openai", model="dall-e-3", width=1024, height=1024)
    assert default == cost_estimate(provider="openai", model="dall-e-3", width=1024, height=1024, quality="standard")
    assert default == Decimal("0.04000")
