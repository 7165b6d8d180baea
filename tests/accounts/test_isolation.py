"""Isolation matrix: every endpoint that names an object answers 404 for another user's object."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.services import token_create
from generation.models import Batch, GenerationStatus

API_READS = [
    "/api/v1/batches/{batch}/",
    "/api/v1/batches/{batch}/generations/",
    "/api/v1/generations/{generation}/",
    "/api/v1/generations/{generation}/image/",
    "/api/v1/generations/{generation}/thumbnail/",
    "/api/v1/generations/{generation}/image/?download=1",
    "/api/v1/tokens/{token}/",
]
API_WRITES = [
    ("post", "/api/v1/batches/{batch}/cancel/"),
    ("post", "/api/v1/batches/{batch}/retry/"),
    ("post", "/api/v1/tokens/{token}/revoke/"),
    ("delete", "/api/v1/tokens/{token}/"),
]
PORTAL_READS = [
    ("generation:batch_detail", "batch_id", "batch"),
    ("generation:generation_detail", "generation_id", "generation"),
]
PORTAL_WRITES = [
    ("generation:batch_cancel", "batch_id", "batch"),
    ("generation:batch_retry", "batch_id", "batch"),
    ("accounts:token_revoke", "token_id", "token"),
]


@pytest.fixture
def theirs(other_user, make_batch):
    """Another user's finished batch (one image failed, so retry would apply), image and token."""
    batch = make_batch(user=other_user, prompts=["secret fox"])
    generation = batch.generations.get()
    return {"batch": batch.id, "generation": generation.id, "token": token_create(user=other_user, name="t").token.id}


@pytest.fixture
def their_active(other_user, make_batch):
    return make_batch(user=other_user, prompts=["queued"], run=False)


@pytest.mark.parametrize("url", API_READS)
def test_api_read_of_another_users_object_is_404(api, theirs, url):
    response = api.get(url.format(**theirs))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("method", "url"), API_WRITES)
def test_api_write_to_another_users_object_is_404_and_changes_nothing(api, theirs, method, url):
    before = Batch.objects.get(pk=theirs["batch"]).status
    response = getattr(api, method)(url.format(**theirs))
    assert response.status_code == 404
    assert Batch.objects.get(pk=theirs["batch"]).status == before


def test_api_cancel_of_another_users_active_batch_is_404(api, their_active):
    assert api.post(f"/api/v1/batches/{their_active.id}/cancel/").status_code == 404
    assert their_active.generations.filter(status=GenerationStatus.PENDING).count() == 1


def test_lists_never_show_another_users_objects(api, theirs):
    assert api.get("/api/v1/batches/").json()["results"] == []
    assert api.get("/api/v1/batches/?search=secret").json()["results"] == []
    assert all(row["id"] != str(theirs["token"]) for row in api.get("/api/v1/tokens/").json()["results"])


@pytest.mark.parametrize(("name", "kwarg", "key"), PORTAL_READS)
def test_portal_page_of_another_users_object_is_404(client, owner, theirs, name, kwarg, key):
    client.force_login(owner)
    assert client.get(reverse(name, kwargs={kwarg: theirs[key]})).status_code == 404


@pytest.mark.parametrize(("name", "kwarg", "key"), PORTAL_WRITES)
def test_portal_action_on_another_users_object_is_404(client, owner, theirs, name, kwarg, key):
    client.force_login(owner)
    assert client.post(reverse(name, kwargs={kwarg: theirs[key]})).status_code == 404


def test_portal_history_search_does_not_find_another_users_prompts(client, owner, theirs):
    client.force_login(owner)
    assert "secret fox" not in client.get(reverse("generation:batch_list") + "?q=secret").content.decode()


@pytest.mark.parametrize("url", API_READS)
def test_anonymous_api_reads_are_401(anon_api, theirs, url):
    assert anon_api.get(url.format(**theirs)).status_code == 401


@pytest.mark.parametrize(("name", "kwarg", "key"), PORTAL_READS + PORTAL_WRITES)
def test_anonymous_portal_requests_go_to_login(client, theirs, name, kwarg, key):
    response = client.post(reverse(name, kwargs={kwarg: theirs[key]}))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]
