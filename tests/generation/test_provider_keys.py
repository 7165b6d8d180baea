"""Bring your own key: saving, listing, deleting and using a user's own provider API key."""

from __future__ import annotations

import base64

import pytest

from accounts.models import AuditEvent
from generation.keys import provider_key_secret
from generation.models import ProviderKey
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes, server

__all__ = ["server"]
URL = "/api/v1/provider-keys/"
KEY = "sk-user-secret-abcd"


@pytest.fixture
def no_operator_openai(settings):
    settings.OPENAI_API_KEY = ""


def test_saving_a_key_encrypts_it_masks_it_and_audits_it(api, owner):
    response = api.post(URL, {"provider": "openai", "api_key": KEY}, format="json")
    assert response.status_code == 201
    assert response.json()["key"] == "…abcd"
    stored = ProviderKey.objects.get(owner=owner)
    assert KEY not in stored.encrypted_key
    assert provider_key_secret(owner_id=owner.pk, provider="openai") == KEY
    assert AuditEvent.objects.filter(event="provider_key.created", user=owner).exists()
    assert KEY not in api.get(URL).content.decode()


def test_saving_again_replaces_the_key(api, owner):
    api.post(URL, {"provider": "openai", "api_key": KEY}, format="json")
    api.post(URL, {"provider": "openai", "api_key": "sk-another-key-wxyz"}, format="json")
    assert [k["key"] for k in api.get(URL).json()] == ["…wxyz"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"provider": "nope", "api_key": KEY}, "unknown_provider"),
        ({"provider": "local", "api_key": KEY}, "unknown_provider"),
        ({"provider": "openai", "api_key": "short"}, "invalid_key"),
        ({"provider": "openai", "api_key": "has a space inside"}, "invalid_key"),
        ({"provider": "openai"}, "validation_error"),
    ],
)
def test_bad_input_is_a_clear_error(api, body, code):
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_deleting_a_key_removes_it_and_audits_it(api, owner):
    api.post(URL, {"provider": "openai", "api_key": KEY}, format="json")
    assert api.delete(f"{URL}openai/").status_code == 204
    assert not ProviderKey.objects.exists()
    assert AuditEvent.objects.filter(event="provider_key.deleted", user=owner).exists()
    assert api.delete(f"{URL}openai/").status_code == 404


def test_another_users_key_is_invisible_and_cannot_be_deleted(api, other_api):
    api.post(URL, {"provider": "openai", "api_key": KEY}, format="json")
    assert other_api.get(URL).json() == []
    assert other_api.delete(f"{URL}openai/").status_code == 404
    assert ProviderKey.objects.count() == 1


def test_wrong_methods_and_anonymous_callers_are_refused(api, anon_api):
    assert api.put(URL, {}, format="json").status_code == 405
    assert api.post(f"{URL}openai/", {}, format="json").status_code == 405
    assert anon_api.get(URL).status_code == 401
    assert anon_api.post(URL, {"provider": "openai", "api_key": KEY}, format="json").status_code == 401


def test_a_provider_configured_only_by_a_users_key_is_offered_to_that_user_alone(
    api, other_api, server, no_operator_openai
):
    api.post(URL, {"provider": "openai", "api_key": KEY}, format="json")
    mine = {p["name"]: p for p in api.get("/api/v1/providers/").json()}
    assert mine["openai"]["own_key"] is True
    assert "openai" not in {p["name"] for p in other_api.get("/api/v1/providers/").json()}
    refused = other_api.post("/api/v1/batches/", {"provider": "openai", "prompts": ["x"]}, format="json")
    assert refused.json()["error"]["code"] == "unknown_provider"


def test_a_batch_uses_its_owners_key(api, server, no_operator_openai, django_capture_on_commit_callbacks):
    image = base64.b64encode(png_bytes()).decode()
    server.route("POST", "/v1/images/generations", Reply(200, {"data": [{"b64_json": image}]}))
    api.post(URL, {"provider": "openai", "api_key": KEY}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            "/api/v1/batches/", {"provider": "openai", "model": "dall-e-2", "prompts": ["x"]}, format="json"
        )
    assert api.get(created.json()["urls"]["self"]).json()["status"] == "completed"
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_the_portal_page_adds_lists_and_deletes_keys(client, owner):
    client.force_login(owner)
    response = client.post("/batches/keys/", {"provider": "stability", "api_key": KEY})
    assert response.status_code == 302
    page = client.get("/batches/keys/").content.decode()
    assert "…abcd" in page and KEY not in page
    assert "<td>Stability AI</td>" in page  # the provider's name as people know it, not its slug
    assert client.get("/batches/keys/stability/delete/").status_code == 405
    assert client.post("/batches/keys/stability/delete/").status_code == 302
    assert not ProviderKey.objects.exists()


def test_the_portal_shows_form_errors_for_bad_keys(client, owner):
    client.force_login(owner)
    response = client.post("/batches/keys/", {"provider": "openai", "api_key": "short"})
    assert response.status_code == 200
    assert "does not look like an API key" in response.content.decode()


def test_the_portal_hides_other_users_keys_and_needs_login(client, owner, other_user, api):
    api.post(URL, {"provider": "openai", "api_key": KEY}, format="json")
    client.force_login(other_user)
    assert "…abcd" not in client.get("/batches/keys/").content.decode()
    assert client.post("/batches/keys/openai/delete/").status_code == 404
    client.logout()
    assert client.get("/batches/keys/").status_code == 302
