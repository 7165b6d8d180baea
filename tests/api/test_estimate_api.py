"""POST /api/v1/batches/estimate/: count after templates, cost and quota left, nothing created."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.models import Batch

ESTIMATE = "/api/v1/batches/estimate/"


def test_the_estimate_counts_templates_and_prices_the_images(api: Any, settings: Any) -> None:
    settings.PROVIDER_PRICES = {**settings.PROVIDER_PRICES, "local": 0.01}
    body = {"prompts": ["a {red|blue} {cat|dog}"], "template": True, "images_per_prompt": 2}
    response = api.post(ESTIMATE, body, format="json")
    assert response.status_code == 200
    data = response.json()
    assert (data["prompts"], data["images"], data["estimated_cost_usd"]) == (4, 8, "0.08000")
    assert data["quota"]["images_left_today"] == settings.DEFAULT_DAILY_IMAGE_QUOTA and data["quota"]["fits"]
    assert not Batch.objects.exists()


def test_the_create_response_carries_the_estimate(api: Any) -> None:
    response = api.post("/api/v1/batches/", {"prompts": ["a", "b"]}, format="json")
    assert response.status_code == 201 and response.json()["estimate"]["images"] == 2


def test_the_create_responses_quota_is_what_was_left_before_this_batch_read_once(api: Any, settings: Any) -> None:
    api.post("/api/v1/batches/", {"prompts": ["first"]}, format="json")
    response = api.post("/api/v1/batches/", {"prompts": ["a", "b"]}, format="json")
    quota = response.json()["estimate"]["quota"]
    assert quota["images_left_today"] == settings.DEFAULT_DAILY_IMAGE_QUOTA - 1
    assert quota["active_batches_left"] == settings.DEFAULT_MAX_ACTIVE_BATCHES - 1
    with CaptureQueriesContext(connection) as create:
        api.post("/api/v1/batches/", {"prompts": ["c"]}, format="json")
    quota_reads = [q for q in create.captured_queries if "accounts_quotacharge" in q["sql"]]
    assert len(quota_reads) == 1


def test_a_wildcard_typo_is_named_not_a_prompt_limit(api: Any) -> None:
    response = api.post(ESTIMATE, {"prompts": ["a __colours__ cat"], "template": True}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_wildcard"
    assert "__colours__" in response.json()["error"]["message"]


def test_bad_input_wrong_method_and_anonymous(api: Any, anon_api: Any) -> None:
    assert api.post(ESTIMATE, {"prompts": []}, format="json").status_code == 400
    assert api.post(ESTIMATE, {"prompts": ["a"], "seed": -1}, format="json").status_code == 400
    assert api.get(ESTIMATE).status_code == 405
    assert anon_api.post(ESTIMATE, {"prompts": ["a"]}, format="json").status_code == 401


def test_another_users_own_key_provider_is_not_offered(other_api: Any) -> None:
    assert other_api.post(ESTIMATE, {"prompts": ["a"], "provider": "openai"}, format="json").status_code == 400


def test_the_portal_form_estimates_as_multipart_with_carried_over_rows(client: Any, owner: Any) -> None:
    """What batch_new.js sends: form fields, `options.<name>`, and re-run rows as a JSON string."""
    client.force_login(owner)
    rows = '[{"prompt": "a", "images": 3}, {"prompt": "b"}]'
    body = {"provider": "local", "items": rows, "images_per_prompt": "2", "width": "512", "height": "512"}
    response = client.post(ESTIMATE, body)
    assert response.status_code == 200, response.json()
    assert (response.json()["prompts"], response.json()["images"]) == (2, 5)
