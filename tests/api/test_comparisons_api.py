"""A/B comparison API: create, list, detail and votes; isolation, one error shape, schema."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from generation.models import Batch, Comparison, ComparisonVote, Generation

pytestmark = pytest.mark.django_db

URL = "/api/v1/comparisons/"
PAYLOAD: dict[str, Any] = {
    "name": "Sizes",
    "prompts": ["a red fox", "一隻藍色的貓 🐱"],
    "arms": [
        {"provider": "local", "width": 256, "height": 256, "label": "small"},
        {"provider": "local", "model": "procedural-v1", "width": 512, "height": 512},
    ],
}


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    return body["error"]


@pytest.fixture
def created(api, run_queue) -> dict:
    with run_queue():
        response = api.post(URL, PAYLOAD, format="json")
    assert response.status_code == 201, response.content
    return api.get(f"{URL}{response.json()['id']}/").json()


class TestCreate:
    def test_creates_one_batch_per_arm_and_answers_the_detail(self, api, run_queue):
        with run_queue():
            response = api.post(URL, {**PAYLOAD, "seed": 9}, format="json")
        assert response.status_code == 201
        body = response.json()
        assert [arm["label"] for arm in body["arms"]] == ["small", "local/procedural-v1 512×512"]
        assert {arm["batch_id"] for arm in body["arms"]} == {str(b.pk) for b in Batch.objects.all()}
        assert [row["seed"] for row in body["rows"]] == [9, 9]
        assert body["urls"]["portal"].endswith(f"/comparisons/{body['id']}/")
        assert set(Generation.objects.values_list("seed", flat=True)) == {9}

    def test_a_retry_with_the_key_after_a_create_that_broke_answers_the_same_comparison(self, api, monkeypatch):
        from generation import api_comparisons

        monkeypatch.setattr(api_comparisons, "ComparisonSerializer", None)  # the answer fails once it is made
        first = api.post(URL, PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="cmp-1")
        assert first.status_code == 500 and Comparison.objects.count() == 1
        monkeypatch.undo()
        retry = api.post(URL, PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="cmp-1")
        assert retry.status_code == 201 and retry.json()["id"] == str(Comparison.objects.get().pk)
        assert Batch.objects.count() == 2  # one per configuration, made once
        replay = api.post(URL, PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="cmp-1")
        assert replay["Idempotent-Replayed"] == "true" and "X-ImageGen-Batch" not in replay

    @pytest.mark.parametrize(
        ("change", "code", "field"),
        [
            ({"prompts": []}, "validation_error", "prompts"),
            ({"prompts": ["   "]}, "no_prompts", "prompts"),
            ({"arms": PAYLOAD["arms"][:1]}, "validation_error", "arms"),
            ({"arms": PAYLOAD["arms"] * 3}, "validation_error", "arms"),
            ({"arms": "local"}, "validation_error", "arms"),
            ({"seed": -1}, "validation_error", "seed"),
            ({"seed": "x"}, "validation_error", "seed"),
        ],
    )
    def test_bad_input_is_one_error_shape(self, api, change, code, field):
        response = api.post(URL, {**PAYLOAD, **change}, format="json")
        assert response.status_code == 400
        body = error(response)
        assert body["code"] == code and field in body["details"]
        assert Comparison.objects.count() == 0

    @pytest.mark.parametrize(
        ("arm", "code", "field"),
        [
            ({"provider": "dall-e"}, "unknown_provider", "provider"),
            ({"provider": "local", "model": "sdxl"}, "unknown_model", "model"),
            ({"provider": "local", "width": 100, "height": 100}, "unsupported_size", "size"),
            ({"provider": "local", "options": {"steps": 3}}, "unknown_option", "options"),
        ],
    )
    def test_a_bad_arm_names_its_index(self, api, arm, code, field):
        response = api.post(URL, {**PAYLOAD, "arms": [PAYLOAD["arms"][0], arm]}, format="json")
        assert response.status_code == 400
        body = error(response)
        assert (body["code"], body["details"]["arm"]) == (code, 1) and field in body["details"]
        assert Batch.objects.count() == 0

    def test_wrong_method(self, api):
        assert error(api.put(URL, PAYLOAD, format="json"))["code"] == "method_not_allowed"

    def test_anonymous_is_401(self, anon_api):
        response = anon_api.post(URL, PAYLOAD, format="json")
        assert response.status_code == 401 and error(response)["code"] == "not_authenticated"


class TestList:
    def test_lists_only_my_comparisons_newest_first(self, api, other_api, created):
        second = api.post(URL, {**PAYLOAD, "name": "Second"}, format="json").json()
        other_api.post(URL, PAYLOAD, format="json")
        body = api.get(URL).json()
        assert body["count"] == 2
        assert [item["id"] for item in body["results"]] == [second["id"], created["id"]]
        item = body["results"][1]
        assert (item["prompts"], item["votes"], item["status"], len(item["arms"])) == (2, 0, "finished", 2)

    def test_pages_with_a_cursor(self, api, created):
        api.post(URL, PAYLOAD, format="json")
        first = api.get(URL, {"page_size": 1}).json()
        assert first["next_cursor"]
        second = api.get(URL, {"page_size": 1, "cursor": first["next_cursor"]}).json()
        assert second["results"][0]["id"] == created["id"] and second["next_cursor"] is None

    def test_anonymous_is_401(self, anon_api):
        assert anon_api.get(URL).status_code == 401


class TestDetail:
    def test_cells_votes_and_summary(self, created):
        assert created["status"] == "finished"
        row = created["rows"][1]
        assert (row["prompt"], row["votable"], row["voted"], row["winner"]) == ("一隻藍色的貓 🐱", True, False, None)
        assert [cell["arm"] for cell in row["cells"]] == [0, 1]
        assert all(cell["status"] == "succeeded" and cell["image_url"] for cell in row["cells"])
        summary = created["summary"][0]
        assert (summary["images_done"], summary["images_total"], summary["failure_rate"]) == (2, 2, 0.0)
        assert summary["win_rate"] is None and summary["votes"] == 0

    def test_another_users_comparison_is_404(self, other_api, created):
        response = other_api.get(f"{URL}{created['id']}/")
        assert response.status_code == 404 and error(response)["code"] == "not_found"

    def test_unknown_id_is_404(self, api):
        assert api.get(f"{URL}{uuid.uuid4()}/").status_code == 404

    def test_anonymous_is_401(self, anon_api, created):
        assert anon_api.get(f"{URL}{created['id']}/").status_code == 401


class TestVotes:
    def test_vote_then_change_to_a_tie(self, api, created):
        url = f"{URL}{created['id']}/votes/"
        body = api.post(url, {"prompt_index": 0, "winner": 1}, format="json").json()
        assert (body["rows"][0]["voted"], body["rows"][0]["winner"]) == (True, 1)
        assert body["summary"][1]["win_rate"] == 1.0
        body = api.post(url, {"prompt_index": 0, "winner": None}, format="json").json()
        assert (body["rows"][0]["voted"], body["rows"][0]["winner"]) == (True, None)
        assert [s["win_rate"] for s in body["summary"]] == [0.5, 0.5]
        assert ComparisonVote.objects.count() == 1

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"prompt_index": 5, "winner": 0}, "prompt_index"),
            ({"prompt_index": 0, "winner": 3}, "winner"),
            ({"prompt_index": -1, "winner": 0}, "prompt_index"),
            ({"prompt_index": "first", "winner": 0}, "prompt_index"),
            ({"winner": 0}, "prompt_index"),
            ({"prompt_index": 0}, "winner"),
        ],
    )
    def test_bad_input(self, api, created, payload, field):
        response = api.post(f"{URL}{created['id']}/votes/", payload, format="json")
        assert response.status_code == 400 and field in error(response)["details"]

    def test_not_ready_is_409(self, api):
        comparison = api.post(URL, PAYLOAD, format="json").json()  # the queue does not run
        response = api.post(f"{URL}{comparison['id']}/votes/", {"prompt_index": 0, "winner": 0}, format="json")
        assert response.status_code == 409 and error(response)["code"] == "prompt_not_ready"

    def test_wrong_method(self, api, created):
        assert api.get(f"{URL}{created['id']}/votes/").status_code == 405

    def test_another_users_comparison_is_404(self, other_api, created):
        response = other_api.post(f"{URL}{created['id']}/votes/", {"prompt_index": 0, "winner": 0}, format="json")
        assert response.status_code == 404
        assert ComparisonVote.objects.count() == 0

    def test_anonymous_is_401(self, anon_api, created):
        response = anon_api.post(f"{URL}{created['id']}/votes/", {"prompt_index": 0, "winner": 0}, format="json")
        assert response.status_code == 401


def test_the_schema_documents_the_comparison_endpoints(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/comparisons/"])
    assert "get" in paths["/api/v1/comparisons/{comparison_id}/"]
    assert "post" in paths["/api/v1/comparisons/{comparison_id}/votes/"]


class TestCancel:
    def test_cancels_every_configuration_still_waiting(self, api):
        comparison = api.post(URL, PAYLOAD, format="json").json()  # nobody runs the queue: both wait
        response = api.post(f"{URL}{comparison['id']}/cancel/")
        assert response.status_code == 200
        assert response.json()["id"] == comparison["id"]
        assert set(Batch.objects.values_list("status", flat=True)) == {"cancelled"}

    def test_an_ended_comparison_stays_as_it_was(self, api, created):
        assert api.post(f"{URL}{created['id']}/cancel/").status_code == 200
        assert set(Batch.objects.values_list("status", flat=True)) == {"completed"}

    def test_another_users_is_404_anonymous_401_and_get_405(self, api, other_api, anon_api, created):
        url = f"{URL}{created['id']}/cancel/"
        assert error(other_api.post(url))["code"] == "not_found"
        assert anon_api.post(url).status_code == 401
        assert api.get(url).status_code == 405
        assert error(api.post(f"{URL}{uuid.uuid4()}/cancel/"))["code"] == "not_found"
