"""Generation REST API: batches, generations, files and providers, with isolation and one error shape."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from generation.models import Batch


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    return body["error"]


@pytest.fixture
def done(make_batch):
    return make_batch(prompts=["a red fox", "藍色海洋 🌊"])


class TestCreateBatch:
    def test_creates_a_batch_and_renders_it(self, api, django_capture_on_commit_callbacks):
        payload = {
            "name": "Foxes",
            "provider": "local",
            "prompts": ["a red fox", "一隻狐狸 🦊"],
            "images_per_prompt": 2,
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/v1/batches/", payload, format="json")
        assert response.status_code == 201
        body = response.json()
        assert body["name"] == "Foxes"
        assert (body["status"], body["total"], body["progress"]) == ("queued", 4, 0.0)
        assert body["source"] == "api"
        uuid.UUID(body["id"])
        assert api.get(f"/api/v1/batches/{body['id']}/").json()["status"] == "completed"

    def test_template_and_size_and_seed(self, api):
        payload = {"prompts": ["a {red|blue} cat"], "template": True, "width": 768, "height": 768, "seed": 7}
        body = api.post("/api/v1/batches/", payload, format="json").json()
        assert body["total"] == 2
        assert body["parameters"]["width"] == 768 and body["parameters"]["seed"] == 7

    @pytest.mark.parametrize(
        ("payload", "field", "code"),
        [
            ({}, "prompts", "validation_error"),
            ({"prompts": []}, "prompts", "validation_error"),
            ({"prompts": "a fox"}, "prompts", "validation_error"),
            ({"prompts": ["a"], "provider": "dall-e"}, "provider", "unknown_provider"),
            ({"prompts": ["a"], "model": "sdxl"}, "model", "unknown_model"),
            ({"prompts": ["a"], "width": 100, "height": 100}, "size", "unsupported_size"),
            ({"prompts": ["a"], "images_per_prompt": 0}, "images_per_prompt", "validation_error"),
            ({"prompts": ["a"], "images_per_prompt": "many"}, "images_per_prompt", "validation_error"),
            ({"prompts": ["a"], "seed": -1}, "seed", "validation_error"),
            ({"prompts": ["   "]}, "prompts", "no_prompts"),
        ],
    )
    def test_bad_input_is_a_400_naming_the_field(self, api, payload, field, code):
        response = api.post("/api/v1/batches/", payload, format="json")
        assert response.status_code == 400
        body = error(response)
        assert body["code"] == code
        assert field in body["details"]
        assert Batch.objects.count() == 0

    def test_anonymous_is_401(self, anon_api):
        response = anon_api.post("/api/v1/batches/", {"prompts": ["a"]}, format="json")
        assert response.status_code == 401
        assert error(response)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_a_bad_token_is_401(self, anon_api):
        anon_api.credentials(HTTP_AUTHORIZATION="Bearer ig_nothing_here")
        response = anon_api.get("/api/v1/batches/")
        assert response.status_code == 401
        assert error(response)["code"] == "authentication_failed"

    def test_wrong_method_is_405(self, api):
        assert error(api.put("/api/v1/batches/", {}, format="json"))["code"] == "method_not_allowed"


class TestReadBatches:
    def test_list_shows_only_my_batches_newest_first(self, api, make_batch, other_user):
        first = make_batch(name="first", run=False)
        second = make_batch(name="second", run=False)
        make_batch(other_user, name="theirs", run=False)
        body = api.get("/api/v1/batches/").json()
        assert body["count"] == 2
        assert [b["id"] for b in body["results"]] == [str(second.pk), str(first.pk)]

    def test_list_is_paginated(self, api, make_batch):
        for index in range(3):
            make_batch(name=f"b{index}", run=False)
        body = api.get("/api/v1/batches/?page_size=2").json()
        assert (body["count"], len(body["results"]), body["next"] is not None) == (3, 2, True)

    def test_search_finds_batches_by_prompt(self, api, make_batch):
        make_batch(name="cats", prompts=["一隻貓"], run=False)
        make_batch(name="dogs", prompts=["a dog"], run=False)
        names = [b["name"] for b in api.get("/api/v1/batches/", {"search": "貓"}).json()["results"]]
        assert names == ["cats"]

    def test_detail_has_counts_progress_and_links(self, api, done):
        body = api.get(f"/api/v1/batches/{done.pk}/").json()
        assert (body["completed"], body["failed"], body["pending"], body["progress"]) == (2, 0, 0, 1.0)
        assert body["urls"]["generations"].endswith(f"/api/v1/batches/{done.pk}/generations/")

    def test_generations_list_has_images_and_their_parameters(self, api, done):
        results = api.get(f"/api/v1/batches/{done.pk}/generations/").json()["results"]
        assert [g["prompt"] for g in results] == ["a red fox", "藍色海洋 🌊"]
        first = results[0]
        assert first["status"] == "succeeded" and first["error"] is None
        assert (first["width"], first["height"]) == (512, 512)
        assert isinstance(first["seed"], int)
        assert first["image_url"].endswith(f"/api/v1/generations/{first['id']}/image/")
        assert first["thumbnail_url"].endswith(f"/api/v1/generations/{first['id']}/thumbnail/")

    def test_image_and_thumbnail_download(self, api, done):
        generation = done.generations.first()
        image = api.get(f"/api/v1/generations/{generation.pk}/image/")
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        assert Image.open(io.BytesIO(b"".join(image.streaming_content))).info["prompt"] == generation.prompt
        thumb = api.get(f"/api/v1/generations/{generation.pk}/thumbnail/")
        assert thumb["Content-Type"] == "image/webp"
        download = api.get(f"/api/v1/generations/{generation.pk}/image/?download=1")
        assert download["Content-Disposition"].startswith("attachment")

    def test_unknown_ids_are_404(self, api):
        missing = uuid.uuid4()
        for url in [f"/api/v1/batches/{missing}/", f"/api/v1/generations/{missing}/image/"]:
            response = api.get(url)
            assert response.status_code == 404
            assert error(response)["code"] == "not_found"

    def test_unknown_api_path_is_404_json(self, api):
        response = api.get("/api/v1/nothing-here/")
        assert response.status_code == 404
        assert error(response)["code"] == "not_found"


class TestActions:
    def test_cancel_a_queued_batch(self, api, make_batch):
        batch = make_batch(run=False)
        body = api.post(f"/api/v1/batches/{batch.pk}/cancel/").json()
        assert (body["status"], body["cancelled"]) == ("cancelled", 2)

    def test_cancel_a_finished_batch_is_409(self, api, done):
        response = api.post(f"/api/v1/batches/{done.pk}/cancel/")
        assert response.status_code == 409
        assert error(response)["code"] == "batch_not_active"

    def test_retry_after_cancel_finishes_the_batch(self, api, make_batch, django_capture_on_commit_callbacks):
        batch = make_batch(run=False)
        api.post(f"/api/v1/batches/{batch.pk}/cancel/")
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post(f"/api/v1/batches/{batch.pk}/retry/").status_code == 200
        assert api.get(f"/api/v1/batches/{batch.pk}/").json()["status"] == "completed"

    def test_retry_with_nothing_failed_is_409(self, api, done):
        assert error(api.post(f"/api/v1/batches/{done.pk}/retry/"))["code"] == "nothing_to_retry"

    def test_actions_need_post(self, api, done):
        assert api.get(f"/api/v1/batches/{done.pk}/cancel/").status_code == 405
        assert api.get(f"/api/v1/batches/{done.pk}/pause/").status_code == 405
        assert api.get(f"/api/v1/generations/{done.generations.first().pk}/retry/").status_code == 405

    def test_pause_then_resume(self, api, make_batch, django_capture_on_commit_callbacks):
        batch = make_batch(run=False)
        body = api.post(f"/api/v1/batches/{batch.pk}/pause/").json()
        assert (body["status"], body["paused"], body["queue_position"], body["eta_seconds"]) == (
            "paused",
            True,
            None,
            None,
        )
        assert error(api.post(f"/api/v1/batches/{batch.pk}/pause/"))["code"] == "batch_not_pausable"
        with django_capture_on_commit_callbacks(execute=True):
            body = api.post(f"/api/v1/batches/{batch.pk}/resume/").json()
        assert body["paused"] is False
        assert api.get(f"/api/v1/batches/{batch.pk}/").json()["status"] == "completed"
        assert error(api.post(f"/api/v1/batches/{batch.pk}/resume/"))["code"] == "batch_not_paused"

    def test_retry_one_image(self, api, make_batch, django_capture_on_commit_callbacks):
        batch = make_batch(run=False)
        api.post(f"/api/v1/batches/{batch.pk}/cancel/")
        generation = batch.generations.first()
        with django_capture_on_commit_callbacks(execute=True):
            body = api.post(f"/api/v1/generations/{generation.pk}/retry/").json()
        assert body["id"] == str(generation.pk)
        generation.refresh_from_db()
        assert generation.status == "succeeded"
        assert api.get(f"/api/v1/batches/{batch.pk}/").json()["completed"] == 1

    def test_retry_of_a_succeeded_image_is_409(self, api, done):
        response = api.post(f"/api/v1/generations/{done.generations.first().pk}/retry/")
        assert (response.status_code, error(response)["code"]) == (409, "generation_not_retryable")

    def test_retry_takes_include_permanent(self, api, make_batch):
        batch = make_batch(run=False)
        api.post(f"/api/v1/batches/{batch.pk}/cancel/")
        response = api.post(f"/api/v1/batches/{batch.pk}/retry/", {"include_permanent": "maybe"}, format="json")
        assert (response.status_code, error(response)["code"]) == (400, "validation_error")


class TestPriority:
    def test_a_batch_takes_low_or_normal_priority(self, api):
        body = api.post("/api/v1/batches/", {"prompts": ["x"], "priority": "low"}, format="json").json()
        assert body["priority"] == "low"
        assert api.post("/api/v1/batches/", {"prompts": ["x"]}, format="json").json()["priority"] == "normal"

    def test_high_priority_is_refused_to_an_ordinary_user(self, api):
        response = api.post("/api/v1/batches/", {"prompts": ["x"], "priority": "high"}, format="json")
        assert (response.status_code, error(response)["code"]) == (400, "priority_not_allowed")
        assert error(response)["details"]["priority"]

    def test_staff_and_permitted_users_may_ask_for_high(self, staff, owner):
        from django.contrib.auth.models import Permission

        from tests.conftest import api_client_for

        staff_body = api_client_for(staff).post(
            "/api/v1/batches/", {"prompts": ["x"], "priority": "high"}, format="json"
        )
        assert staff_body.json()["priority"] == "high"
        owner.user_permissions.add(Permission.objects.get(codename="submit_high_priority"))
        response = api_client_for(owner).post("/api/v1/batches/", {"prompts": ["x"], "priority": "high"}, format="json")
        assert response.status_code == 201

    def test_an_unknown_priority_is_a_400(self, api):
        response = api.post("/api/v1/batches/", {"prompts": ["x"], "priority": "urgent"}, format="json")
        assert (response.status_code, error(response)["code"]) == (400, "validation_error")


class TestIsolation:
    """Another user's objects are 404, exactly like ids that do not exist."""

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", "/api/v1/batches/{batch}/"),
            ("get", "/api/v1/batches/{batch}/generations/"),
            ("post", "/api/v1/batches/{batch}/cancel/"),
            ("post", "/api/v1/batches/{batch}/retry/"),
            ("post", "/api/v1/batches/{batch}/pause/"),
            ("post", "/api/v1/batches/{batch}/resume/"),
            ("post", "/api/v1/generations/{generation}/retry/"),
            ("get", "/api/v1/generations/{generation}/"),
            ("get", "/api/v1/generations/{generation}/image/"),
            ("get", "/api/v1/generations/{generation}/thumbnail/"),
        ],
    )
    def test_another_users_objects_are_404(self, other_api, done, method, path):
        url = path.format(batch=done.pk, generation=done.generations.first().pk)
        response = getattr(other_api, method)(url)
        assert response.status_code == 404
        assert error(response)["code"] == "not_found"

    @pytest.mark.parametrize("path", ["/api/v1/batches/{batch}/", "/api/v1/generations/{generation}/image/"])
    def test_anonymous_is_401(self, anon_api, done, path):
        url = path.format(batch=done.pk, generation=done.generations.first().pk)
        assert anon_api.get(url).status_code == 401


def test_providers_lists_the_offline_renderer_with_its_capabilities(api):
    providers = api.get("/api/v1/providers/").json()
    local = next(p for p in providers if p["name"] == "local")
    assert local["offline"] is True and local["default"] is True
    capabilities = local["models"][0]["capabilities"]
    assert "512x512" in capabilities["sizes"]
    assert capabilities["seed"] is True


def test_responses_carry_a_request_id(api):
    response = api.get("/api/v1/batches/")
    assert len(response["X-Request-ID"]) >= 8


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/batches/" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_provider_labels_follow_the_callers_language(api):
    local = next(p for p in api.get("/api/v1/providers/", HTTP_ACCEPT_LANGUAGE="zh-TW").json() if p["name"] == "local")
    assert local["label"] == "本機繪圖器（離線）"
    assert "不是 AI 模型" in local["description"]
