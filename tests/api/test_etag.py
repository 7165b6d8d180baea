"""Conditional GETs: finished batches, their images and the lists answer If-None-Match with 304."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation import lifecycle, services
from generation.models import Batch


@pytest.fixture
def done(make_batch):
    return make_batch(prompts=["a red fox", "a blue cat"])


def refetch(api, url, response):
    return api.get(url, HTTP_IF_NONE_MATCH=response["ETag"])


@pytest.mark.parametrize("path", ["/api/v1/batches/{id}/", "/api/v1/batches/{id}/generations/"])
def test_a_finished_batch_answers_304_while_unchanged(api, done, path):
    url = path.format(id=done.pk)
    first = api.get(url)
    assert first.status_code == 200
    assert first["ETag"].startswith('W/"')
    assert first["Cache-Control"] == "private, no-cache"
    again = refetch(api, url, first)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]


@pytest.mark.parametrize("path", ["/api/v1/batches/", "/api/v1/generations/"])
def test_lists_answer_304_while_unchanged(api, done, path):
    first = api.get(path)
    assert refetch(api, path, first).status_code == 304
    assert api.get(path, HTTP_IF_NONE_MATCH=f'"other", {first["ETag"]}').status_code == 304
    assert api.get(path, HTTP_IF_NONE_MATCH='W/"something-else"').status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/batches/", "/api/v1/generations/"])
def test_a_new_batch_changes_the_lists_etag(api, done, make_batch, path):
    first = api.get(path)
    make_batch(prompts=["a green owl"])
    changed = refetch(api, path, first)
    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]


def test_a_status_change_changes_the_etags(api, done):
    detail, listing = f"/api/v1/batches/{done.pk}/", "/api/v1/batches/"
    before = api.get(detail), api.get(listing)
    done.generations.filter(position=1).update(status="failed", error_code="server_error")
    batch = lifecycle.batch_refresh(batch_id=done.pk)
    assert batch.status == "partial"
    partial = refetch(api, detail, before[0])
    assert partial.status_code == 200
    assert refetch(api, listing, before[1]).status_code == 200
    services.batch_retry_failed(batch=batch)  # queued again: no tag while it runs
    assert "ETag" not in refetch(api, detail, partial)


def test_an_active_batch_has_no_etag(api, make_batch):
    batch = make_batch(run=False)
    response = api.get(f"/api/v1/batches/{batch.pk}/")
    assert "ETag" not in response
    assert api.get(f"/api/v1/batches/{batch.pk}/", HTTP_IF_NONE_MATCH="*").status_code == 200


def test_a_deleted_batch_changes_the_list_etag(api, done, make_batch):
    make_batch(prompts=["another"])
    first = api.get("/api/v1/batches/")
    Batch.objects.filter(pk=done.pk).delete()
    assert refetch(api, "/api/v1/batches/", first).status_code == 200


def test_another_query_has_another_etag(api, done):
    plain = api.get("/api/v1/batches/")
    assert api.get("/api/v1/batches/?page_size=1", HTTP_IF_NONE_MATCH=plain["ETag"]).status_code == 200


def test_another_users_etag_is_not_mine(api, other_api, done):
    mine = api.get("/api/v1/batches/")
    assert other_api.get("/api/v1/batches/", HTTP_IF_NONE_MATCH=mine["ETag"]).status_code == 200
    assert other_api.get(f"/api/v1/batches/{done.pk}/", HTTP_IF_NONE_MATCH=mine["ETag"]).status_code == 404


def test_the_schema_documents_304_and_if_none_match():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/v1/batches/", "/api/v1/batches/{batch_id}/", "/api/v1/generations/"):
        operation = schema["paths"][path]["get"]
        assert "304" in operation["responses"]
        assert any(parameter["name"] == "If-None-Match" for parameter in operation["parameters"])


@pytest.mark.parametrize("path", ["/api/v1/batches/{id}/generations/", "/api/v1/generations/"])
def test_starring_an_image_changes_the_etag_of_the_lists_that_show_it(api, done, path):
    url = path.format(id=done.pk)
    first = api.get(url)
    image = done.generations.get(position=0)
    assert api.post(f"/api/v1/generations/{image.pk}/favourite/").status_code == 200
    changed = refetch(api, url, first)
    assert changed.status_code == 200
    assert [row["favourite"] for row in changed.json()["results"] if row["id"] == str(image.pk)] == [True]


@pytest.mark.parametrize("path", ["/api/v1/batches/{id}/", "/api/v1/batches/{id}/generations/"])
def test_deleting_an_image_changes_the_etag_of_its_batch(api, done, path):
    url = path.format(id=done.pk)
    first = api.get(url)
    image = done.generations.get(position=0)
    assert api.post("/api/v1/generations/delete/", {"ids": [str(image.pk)]}, format="json").status_code == 200
    assert refetch(api, url, first).status_code == 200


def _reads_rows_whole(queries):
    return any('"prompt"' in query["sql"] and "generation_generation" in query["sql"] for query in queries)


def test_a_finished_batchs_page_is_kept_and_served_to_the_next_reader_without_reading_its_rows(api, done):
    url = f"/api/v1/batches/{done.pk}/generations/"
    with CaptureQueriesContext(connection) as first_read:
        first = api.get(url)
    with CaptureQueriesContext(connection) as second_read:
        second = api.get(url)  # no If-None-Match: another client, or one that keeps no copy
    assert _reads_rows_whole(first_read.captured_queries)
    assert not _reads_rows_whole(second_read.captured_queries)
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second["ETag"] == first["ETag"]


def test_a_kept_page_is_not_served_once_an_image_on_it_is_starred_or_deleted(api, done):
    url = f"/api/v1/batches/{done.pk}/generations/"
    api.get(url)
    image = done.generations.get(position=0)
    api.post(f"/api/v1/generations/{image.pk}/favourite/")
    assert [row["favourite"] for row in api.get(url).json()["results"]] == [True, False]
    api.post("/api/v1/generations/delete/", {"ids": [str(image.pk)]}, format="json")
    page = api.get(url).json()
    assert [row["position"] for row in page["results"]] == [1]
    assert page["count"] == 1


def test_each_page_and_filter_of_a_batch_is_kept_apart(api, make_batch):
    batch = make_batch(prompts=["one", "two", "three"])
    url = f"/api/v1/batches/{batch.pk}/generations/"
    first = api.get(url + "?page_size=2").json()
    second = api.get(url + f"?page_size=2&cursor={first['next_cursor']}").json()
    assert [row["position"] for row in first["results"]] == [0, 1]
    assert [row["position"] for row in second["results"]] == [2]
    assert api.get(url + "?status=failed").json()["results"] == []


def test_a_running_batchs_page_is_never_kept(api, make_batch):
    batch = make_batch(run=False)
    url = f"/api/v1/batches/{batch.pk}/generations/"
    assert api.get(url).json()["results"][0]["status"] == "pending"
    batch.generations.update(status="running")
    assert api.get(url).json()["results"][0]["status"] == "running"


def test_pages_are_read_whole_every_time_when_keeping_is_off(api, done, settings):
    settings.FINISHED_PAGE_CACHE_SECONDS = 0
    url = f"/api/v1/batches/{done.pk}/generations/"
    api.get(url)
    with CaptureQueriesContext(connection) as again:
        assert api.get(url).status_code == 200
    assert _reads_rows_whole(again.captured_queries)


class DownCache:
    def __getattr__(self, name):
        def down(*args, **kwargs):
            raise ConnectionError("redis is down")

        return down


def test_a_cache_that_is_down_only_means_reading_the_rows(api, done, monkeypatch):
    monkeypatch.setattr("imagegen.shared_cache.cache", DownCache())
    response = api.get(f"/api/v1/batches/{done.pk}/generations/")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2
