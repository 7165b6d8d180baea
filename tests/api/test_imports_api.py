"""Imports through POST /api/v1/batches/: `items` in JSON, or a multipart `file`."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.models import Batch


def test_items_keep_their_own_seed_and_image_count(api: Any) -> None:
    items = [{"prompt": "a {style} fox", "style": "watercolour", "seed": 5, "images": 2}, {"prompt": "b"}]
    response = api.post("/api/v1/batches/", {"items": items}, format="json")
    assert response.status_code == 201, response.json()
    batch = Batch.objects.get()
    rows = list(batch.generations.order_by("position").values_list("prompt", "seed"))
    assert rows[:2] == [("a watercolour fox", 5), ("a watercolour fox", 6)] and rows[2][0] == "b"
    assert batch.parameters["items"][0] == {"prompt": "a watercolour fox", "seed": 5, "images": 2}


def test_a_csv_file_imports_rows_and_not_its_header(api: Any) -> None:
    upload = SimpleUploadedFile("rows.csv", "\ufeffprompt,negative_prompt\n一隻貓,\nb,blur\n".encode())
    response = api.post("/api/v1/batches/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.json()
    assert list(Batch.objects.get().generations.values_list("prompt", flat=True)) == ["一隻貓", "b"]


def test_a_bad_file_is_refused_whole_with_row_numbers(api: Any) -> None:
    upload = SimpleUploadedFile("rows.csv", b"prompt,seed,width\nok,1,512\nbad,x,512\nsize,1,333\n")
    response = api.post("/api/v1/batches/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["rows"] == [
        {"row": 3, "field": "seed", "message": response.json()["error"]["details"]["rows"][0]["message"]}
    ]
    assert not Batch.objects.exists()


def test_a_row_size_the_model_does_not_offer_names_its_row(api: Any) -> None:
    response = api.post("/api/v1/batches/", {"items": [{"prompt": "a"}, {"prompt": "b", "width": 333}]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["rows"][0]["row"] == 2
    assert not Batch.objects.exists()


def test_items_that_are_not_a_list_wrong_method_and_anonymous(api: Any, anon_api: Any) -> None:
    assert api.post("/api/v1/batches/", {"items": {"prompt": "a"}}, format="json").status_code == 400
    assert api.put("/api/v1/batches/", {"items": [{"prompt": "a"}]}, format="json").status_code == 405
    assert anon_api.post("/api/v1/batches/", {"items": [{"prompt": "a"}]}, format="json").status_code == 401


def test_a_batch_reruns_from_what_the_api_returns(api: Any) -> None:
    body = {"prompts": ["a {x|y}"], "template": True, "seed": 4, "images_per_prompt": 2, "priority": "low"}
    first = api.post("/api/v1/batches/", body, format="json").json()
    shown = api.get(f"/api/v1/batches/{first['id']}/").json()
    parameters = shown["parameters"]
    again = {
        "provider": shown["provider"],
        "model": shown["model"],
        "priority": shown["priority"],
        "prompts": parameters["prompt_lines"],
        "items": parameters["items"] or None,
        "template": parameters["template"],
        "seed": parameters["seed"],
        "images_per_prompt": parameters["images_per_prompt"],
        "width": parameters["width"],
        "height": parameters["height"],
        "options": parameters["options"],
        "fallbacks": [f"{f['provider']}:{f['model']}" for f in parameters["fallbacks"]],
    }
    second = api.post("/api/v1/batches/", again, format="json").json()
    assert second["parameters"] == parameters and second["total"] == first["total"] == 4


def test_prompts_and_imported_rows_together_are_refused(api: Any) -> None:
    body = {"prompts": ["typed"], "items": [{"prompt": "imported"}]}
    response = api.post("/api/v1/batches/", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "prompts_and_items"
    upload = SimpleUploadedFile("rows.jsonl", b'{"prompt": "imported"}\n')
    response = api.post("/api/v1/batches/", {"file": upload, "prompts": ["typed"]}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["code"] == "prompts_and_items"
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    "items",
    [
        [1, "x", None],
        [{"prompt": {"nested": 1}}],
        [{"prompt": "a", "seed": "1e400"}],
        [{"prompt": "a", "images": True}],
        [{"prompt": "a", "width": "wide"}],
        [{"prompt": "a" * 5000}],
        [],
    ],
)
def test_odd_rows_are_a_400_never_a_500(api: Any, items: Any) -> None:
    response = api.post("/api/v1/batches/", {"items": items}, format="json")
    assert response.status_code == 400, response.content
    assert not Batch.objects.exists()


def test_a_row_with_its_own_seed_is_cacheable_and_one_without_is_not(api: Any) -> None:
    response = api.post("/api/v1/batches/", {"items": [{"prompt": "a", "seed": 5}, {"prompt": "b"}]}, format="json")
    assert response.status_code == 201
    keys = list(Batch.objects.get().generations.order_by("position").values_list("cache_key", flat=True))
    assert keys[0] and keys[1] == ""
