"""GET /api/v1/batches/<id>/download/ and POST /api/v1/generations/download/: streamed ZIPs."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from tests.generation.test_archive import _finish


def _manifest(response: Any) -> list[dict[str, Any]]:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    return json.loads(archive.read("manifest.json"))


def test_a_batch_downloads_as_a_zip_with_a_safe_chinese_filename(api: Any, make_batch: Any) -> None:
    batch = make_batch(name="貓 batch", prompts=["a", "b"], run=False)
    _finish(batch, failed=1)
    response = api.get(f"/api/v1/batches/{batch.pk}/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert "filename*=UTF-8''%E8%B2%93%20batch.zip" in response["Content-Disposition"]
    assert [row["status"] for row in _manifest(response)] == ["succeeded", "failed"]


def test_status_succeeded_leaves_the_failed_ones_out(api: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=["a", "b"], run=False)
    _finish(batch, failed=1)
    response = api.get(f"/api/v1/batches/{batch.pk}/download/", {"status": "succeeded"})
    assert [row["prompt"] for row in _manifest(response)] == ["a"]
    assert api.get(f"/api/v1/batches/{batch.pk}/download/", {"status": "nope"}).json()["error"]["code"]


def test_a_download_counts_once_against_the_rate_limit(api: Any, make_batch: Any, settings: Any) -> None:
    settings.API_RATE_LIMIT = "3/minute"
    batch = make_batch(prompts=[f"p{n}" for n in range(10)], run=False)
    _finish(batch)
    assert api.get(f"/api/v1/batches/{batch.pk}/download/").status_code == 200
    assert api.get(f"/api/v1/batches/{batch.pk}/download/").status_code == 200
    assert api.get("/api/v1/batches/").status_code == 200  # 3 requests: 10 images did not count
    assert api.get("/api/v1/batches/").status_code == 429


def test_another_users_batch_or_image_is_a_404_and_anonymous_is_401(
    api: Any, other_api: Any, anon_api: Any, make_batch: Any
) -> None:
    batch = make_batch(prompts=["a"], run=False)
    ids = [str(batch.generations.get().pk)]
    assert other_api.get(f"/api/v1/batches/{batch.pk}/download/").status_code == 404
    assert other_api.post("/api/v1/generations/download/", {"ids": ids}, format="json").status_code == 404
    assert anon_api.get(f"/api/v1/batches/{batch.pk}/download/").status_code == 401
    assert anon_api.post("/api/v1/generations/download/", {"ids": ids}, format="json").status_code == 401


def test_a_selection_downloads_across_batches(api: Any, make_batch: Any) -> None:
    first, second = make_batch(prompts=["a", "b"], run=False), make_batch(prompts=["c"], run=False)
    _finish(first)
    _finish(second)
    ids = [str(first.generations.get(position=1).pk), str(second.generations.get().pk)]
    response = api.post("/api/v1/generations/download/", {"ids": ids}, format="json")
    assert response.status_code == 200
    assert sorted(row["prompt"] for row in _manifest(response)) == ["b", "c"]


def test_a_bad_selection_is_a_400_and_get_is_a_405(api: Any) -> None:
    assert api.post("/api/v1/generations/download/", {"ids": []}, format="json").status_code == 400
    assert api.post("/api/v1/generations/download/", {"ids": ["x"]}, format="json").status_code == 400
    too_many = {"ids": [f"00000000-0000-0000-0000-{n:012d}" for n in range(1001)]}
    assert api.post("/api/v1/generations/download/", too_many, format="json").status_code == 400
    assert api.get("/api/v1/generations/download/").status_code == 405


def test_the_portal_downloads_a_batch_and_a_posted_selection(client: Any, owner: Any, make_batch: Any) -> None:
    client.force_login(owner)
    batch = make_batch(prompts=["a", "b"], run=False)
    _finish(batch)
    assert client.get(f"/batches/{batch.pk}/download/").status_code == 200
    ids = [str(g.pk) for g in batch.generations.all()]
    response = client.post("/batches/download/", {"ids": ids})
    assert len(_manifest(response)) == 2
    assert client.get("/batches/download/").status_code == 405


def test_the_portal_downloads_only_my_own_and_only_when_logged_in(
    client: Any, other_user: Any, make_batch: Any
) -> None:
    batch = make_batch(prompts=["a"], run=False)
    ids = [str(batch.generations.get().pk)]
    assert client.get(f"/batches/{batch.pk}/download/").status_code == 302  # to the login page
    client.force_login(other_user)
    assert client.get(f"/batches/{batch.pk}/download/").status_code == 404
    assert client.post("/batches/download/", {"ids": ids}).status_code == 404
    assert client.post("/batches/download/", {"ids": []}).status_code == 302  # back, with the message


def test_a_collection_downloads_its_listed_images_in_the_order_they_were_added(
    api: Any, other_api: Any, anon_api: Any, make_batch: Any, owner: Any, client: Any
) -> None:
    from generation import library

    batch = make_batch(prompts=["first", "second", "third"], run=False)
    _finish(batch)
    by_prompt = {g.prompt: g for g in batch.generations.all()}
    collection = library.collection_create(owner=owner, name="精選")
    library.collection_items_add(collection=collection, generations=[by_prompt["third"], by_prompt["first"]])
    library.collection_items_add(collection=collection, generations=[by_prompt["second"]])
    library.generations_delete(generations=[by_prompt["second"]])
    url = f"/api/v1/collections/{collection.pk}/download/"
    response = api.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert [row["prompt"] for row in _manifest(response)] == ["third", "first"]  # the deleted one is left out
    assert other_api.get(url).status_code == 404
    assert anon_api.get(url).status_code == 401
    assert api.post(url).status_code == 405
    client.force_login(owner)
    portal = client.get(f"/batches/collections/{collection.pk}/download/")
    assert [row["prompt"] for row in _manifest(portal)] == ["third", "first"]
    assert 'id="collection-download"' in client.get(f"/batches/collections/{collection.pk}/").content.decode()
