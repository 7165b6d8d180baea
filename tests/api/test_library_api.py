"""The library API: filters, favourites, collections and deleting images, batches and collections."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from generation.models import Batch, Collection, Generation

LIBRARY = "/api/v1/generations/"
COLLECTIONS = "/api/v1/collections/"
BULK_DELETE = "/api/v1/generations/delete/"


@pytest.fixture
def made(make_batch: Any) -> Batch:
    """A finished batch of the owner with two stored images."""
    return make_batch(name="made", prompts=["a red fox", "一隻藍色的貓"])


def _ids(made: Batch) -> list[str]:
    return [str(pk) for pk in made.generations.order_by("position").values_list("id", flat=True)]


def _prompts(body: dict[str, Any]) -> list[str]:
    return [g["prompt"] for g in body["results"]]


@pytest.fixture
def collection(api: Any) -> dict[str, Any]:
    return api.post(COLLECTIONS, {"name": "Cats"}, format="json").json()


# --- library filters -------------------------------------------------------------------------------


def test_the_library_filters_by_size_dates_and_favourites(api: Any, make_batch: Any, made: Batch) -> None:
    wide = make_batch(name="wide", prompts=["a wide fox"], width=768, height=512, run=False)
    Batch.objects.filter(pk=wide.pk).update(created_at=timezone.now() - timedelta(days=3))
    assert _prompts(api.get(LIBRARY, {"size": "768x512"}).json()) == ["a wide fox"]
    since = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert "a wide fox" not in _prompts(api.get(LIBRARY, {"since": since}).json())
    assert _prompts(api.get(LIBRARY, {"until": since}).json()) == ["a wide fox"]
    assert api.get(LIBRARY, {"favourite": "true"}).json()["results"] == []
    api.post(f"/api/v1/generations/{_ids(made)[1]}/favourite/")
    assert _prompts(api.get(LIBRARY, {"favourite": "true"}).json()) == ["一隻藍色的貓"]
    assert _prompts(api.get(LIBRARY, {"favourite": "true", "search": "貓"}).json()) == ["一隻藍色的貓"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("size", "big"), ("since", "yesterday"), ("until", "2025-13-45"), ("favourite", "maybe"), ("collection", "x")],
)
def test_bad_library_filters_are_a_400_naming_the_field(api: Any, name: str, value: str) -> None:
    response = api.get(LIBRARY, {name: value})
    assert response.status_code == 400
    assert name in response.json()["error"]["details"]


def test_the_library_of_another_users_collection_is_empty(api: Any, other_api: Any, made: Batch) -> None:
    theirs = other_api.post(COLLECTIONS, {"name": "Theirs"}, format="json").json()
    assert api.get(LIBRARY, {"collection": theirs["id"]}).json()["results"] == []


# --- favourites ------------------------------------------------------------------------------------


def test_star_and_unstar_an_image(api: Any, made: Batch) -> None:
    url = f"/api/v1/generations/{_ids(made)[0]}/favourite/"
    assert api.post(url).json()["favourite"] is True
    assert Generation.objects.get(pk=_ids(made)[0]).favourite
    assert api.delete(url).json()["favourite"] is False
    assert api.get(f"/api/v1/generations/{_ids(made)[0]}/").json()["favourite"] is False


def test_favourite_access(api: Any, other_api: Any, anon_api: Any, made: Batch) -> None:
    url = f"/api/v1/generations/{_ids(made)[0]}/favourite/"
    assert other_api.post(url).status_code == 404
    assert anon_api.post(url).status_code == 401
    assert api.get(url).status_code == 405
    assert api.post("/api/v1/generations/00000000-0000-0000-0000-000000000000/favourite/").status_code == 404


# --- collections -----------------------------------------------------------------------------------


def test_create_list_rename_and_delete_a_collection(api: Any, made: Batch, collection: dict[str, Any]) -> None:
    assert collection["name"] == "Cats" and collection["size"] == 0
    assert [c["name"] for c in api.get(COLLECTIONS).json()["results"]] == ["Cats"]
    url = f"{COLLECTIONS}{collection['id']}/"
    assert api.patch(url, {"name": "  Blue   cats "}, format="json").json()["name"] == "Blue cats"
    assert api.get(url).json()["name"] == "Blue cats"
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert Generation.objects.filter(batch=made).count() == 2  # the images stay


def test_add_and_remove_images(api: Any, made: Batch, collection: dict[str, Any]) -> None:
    url = f"{COLLECTIONS}{collection['id']}/items/"
    ids = _ids(made)
    body = api.post(url, {"generation_ids": ids}, format="json").json()
    assert body == {"changed": 2, "collection": {**collection, "size": 2}}
    assert api.post(url, {"generation_ids": ids[:1]}, format="json").json()["changed"] == 0
    assert len(api.get(LIBRARY, {"collection": collection["id"]}).json()["results"]) == 2
    assert api.delete(url, {"generation_ids": ids[:1]}, format="json").json()["changed"] == 1
    assert _prompts(api.get(LIBRARY, {"collection": collection["id"]}).json()) == ["一隻藍色的貓"]


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x" * 101}, {"name": 5}],
)
def test_a_collection_needs_a_name(api: Any, body: dict[str, Any]) -> None:
    response = api.post(COLLECTIONS, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_names_are_unique_per_user(api: Any, other_api: Any, collection: dict[str, Any]) -> None:
    assert api.post(COLLECTIONS, {"name": "Cats"}, format="json").json()["error"]["code"] == "collection_exists"
    assert other_api.post(COLLECTIONS, {"name": "Cats"}, format="json").status_code == 201
    second = api.post(COLLECTIONS, {"name": "Dogs"}, format="json").json()
    response = api.patch(f"{COLLECTIONS}{second['id']}/", {"name": "Cats"}, format="json")
    assert response.status_code == 409


@pytest.mark.parametrize(
    "body",
    [{}, {"generation_ids": []}, {"generation_ids": ["nope"]}, {"generation_ids": "x"}],
)
def test_collection_items_bad_input(api: Any, collection: dict[str, Any], body: dict[str, Any]) -> None:
    assert api.post(f"{COLLECTIONS}{collection['id']}/items/", body, format="json").status_code == 400


def test_another_users_images_cannot_go_in_my_collection(
    api: Any, make_batch: Any, other_user: Any, collection: dict[str, Any]
) -> None:
    theirs = make_batch(other_user, prompts=["theirs"], run=False)
    ids = [str(theirs.generations.get().pk)]
    response = api.post(f"{COLLECTIONS}{collection['id']}/items/", {"generation_ids": ids}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["details"]["ids"] == ids


def test_collection_access(api: Any, other_api: Any, anon_api: Any, made: Batch, collection: dict[str, Any]) -> None:
    url = f"{COLLECTIONS}{collection['id']}/"
    items = {"generation_ids": _ids(made)}
    assert other_api.get(url).status_code == 404
    assert other_api.patch(url, {"name": "mine"}, format="json").status_code == 404
    assert other_api.delete(url).status_code == 404
    assert other_api.post(f"{url}items/", items, format="json").status_code == 404
    assert other_api.delete(f"{url}items/", items, format="json").status_code == 404
    assert other_api.get(COLLECTIONS).json()["results"] == []
    for response in (anon_api.get(COLLECTIONS), anon_api.post(COLLECTIONS, {"name": "x"}), anon_api.delete(url)):
        assert response.status_code == 401
    assert api.put(url, {"name": "x"}, format="json").status_code == 405
    assert api.get(f"{url}items/").status_code == 405
    assert api.get(f"{COLLECTIONS}not-a-uuid/").status_code == 404
    assert Collection.objects.get(pk=collection["id"]).name == "Cats"


# --- deleting --------------------------------------------------------------------------------------


def test_deleting_an_image_removes_it_and_its_files_but_keeps_the_batch_counts(
    api: Any, made: Batch, run_queue: Any
) -> None:
    generation = made.generations.get(position=0)
    files = [generation.image.name, generation.thumbnail.name]
    assert all(default_storage.exists(str(name)) for name in files)
    with run_queue():
        assert api.delete(f"/api/v1/generations/{generation.pk}/").status_code == 204
    assert not any(default_storage.exists(str(name)) for name in files)
    assert api.get(f"/api/v1/generations/{generation.pk}/").status_code == 404
    assert _prompts(api.get(LIBRARY).json()) == ["一隻藍色的貓"]
    batch = api.get(f"/api/v1/batches/{made.pk}/").json()
    assert (batch["total"], batch["completed"], batch["deleted"]) == (2, 2, 1)  # made and charged: still counted
    assert api.get(f"/api/v1/batches/{made.pk}/generations/").json()["count"] == 1


def test_an_image_being_made_cannot_be_deleted(api: Any, make_batch: Any) -> None:
    waiting = make_batch(prompts=["waiting"], run=False).generations.get()
    response = api.delete(f"/api/v1/generations/{waiting.pk}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "generation_unfinished"


def test_bulk_delete(api: Any, made: Batch, make_batch: Any, run_queue: Any) -> None:
    other = make_batch(name="other", prompts=["a dog"])
    ids = [*_ids(made), *_ids(other)]
    with run_queue():
        assert api.post(BULK_DELETE, {"ids": ids}, format="json").json() == {"deleted": 3}
    assert api.get(LIBRARY).json()["results"] == []
    assert Batch.objects.get(pk=made.pk).deleted == 2


@pytest.mark.parametrize("body", [{}, {"ids": []}, {"ids": ["x"]}, {"ids": "abc"}])
def test_bulk_delete_bad_input(api: Any, body: dict[str, Any]) -> None:
    assert api.post(BULK_DELETE, body, format="json").status_code == 400


def test_bulk_delete_is_limited_to_500(api: Any) -> None:
    ids = [f"00000000-0000-0000-0000-{n:012d}" for n in range(501)]
    assert api.post(BULK_DELETE, {"ids": ids}, format="json").status_code == 400


def test_bulk_delete_with_another_users_image_deletes_nothing(
    api: Any, other_api: Any, anon_api: Any, made: Batch
) -> None:
    response = other_api.post(BULK_DELETE, {"ids": _ids(made)}, format="json")
    assert response.status_code == 404
    assert set(response.json()["error"]["details"]["ids"]) == set(_ids(made))
    assert anon_api.post(BULK_DELETE, {"ids": _ids(made)}, format="json").status_code == 401
    assert api.get(BULK_DELETE).status_code == 405
    assert other_api.delete(f"/api/v1/generations/{_ids(made)[0]}/").status_code == 404
    assert anon_api.delete(f"/api/v1/generations/{_ids(made)[0]}/").status_code == 401
    assert Generation.objects.listed().filter(batch=made).count() == 2


def test_deleting_a_batch(api: Any, made: Batch, run_queue: Any, collection: dict[str, Any]) -> None:
    api.post(f"{COLLECTIONS}{collection['id']}/items/", {"generation_ids": _ids(made)}, format="json")
    names = [n for g in made.generations.all() for n in (g.image.name, g.thumbnail.name)]
    with run_queue():
        assert api.delete(f"/api/v1/batches/{made.pk}/").status_code == 204
    assert api.get(f"/api/v1/batches/{made.pk}/").status_code == 404
    assert api.get("/api/v1/batches/").json()["results"] == []
    assert api.get(LIBRARY).json()["results"] == []
    assert not any(default_storage.exists(str(name)) for name in names)
    assert api.get(f"{COLLECTIONS}{collection['id']}/").json()["size"] == 0
    assert api.get("/api/v1/usage/").json()["images"] == 2  # usage history is kept


def test_a_running_batch_must_be_cancelled_before_deleting(api: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=["waiting"], run=False)
    response = api.delete(f"/api/v1/batches/{batch.pk}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "batch_active"
    api.post(f"/api/v1/batches/{batch.pk}/cancel/")
    assert api.delete(f"/api/v1/batches/{batch.pk}/").status_code == 204


def test_batch_delete_access(other_api: Any, anon_api: Any, api: Any, made: Batch) -> None:
    assert other_api.delete(f"/api/v1/batches/{made.pk}/").status_code == 404
    assert anon_api.delete(f"/api/v1/batches/{made.pk}/").status_code == 401
    assert api.put(f"/api/v1/batches/{made.pk}/").status_code == 405
    assert Batch.objects.get(pk=made.pk).deleted_at is None


def test_collections_come_a_page_at_a_time_newest_first(api):
    names = [f"Set {number}" for number in range(5)]
    for name in names:
        assert api.post(COLLECTIONS, {"name": name}, format="json").status_code == 201
    first = api.get(COLLECTIONS, {"page_size": 2}).json()
    assert first["count"] == 5
    assert [c["name"] for c in first["results"]] == ["Set 4", "Set 3"]
    seen = [c["name"] for c in first["results"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get(COLLECTIONS, {"page_size": 2, "cursor": cursor}).json()
        seen += [c["name"] for c in page["results"]]
        cursor = page["next_cursor"]
    assert seen == names[::-1]
    assert api.get(COLLECTIONS, {"cursor": "not-a-cursor"}).json()["results"][0]["name"] == "Set 4"
