"""Token API: /api/v1/auth/token/ (password login), /api/v1/tokens/ (list, create, revoke) and /me/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create
from tests.accounts.conftest import current_code
from tests.conftest import PASSWORD

TOKENS = "/api/v1/tokens/"


def test_password_login_issues_a_token_that_works(anon_api, owner):
    response = anon_api.post("/api/v1/auth/token/", {"username": "owner", "password": PASSWORD, "name": "cli"})
    assert response.status_code == 201, response.json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert client.get("/api/v1/me/").json()["user"]["username"] == "owner"


def test_password_login_with_expiry_sets_expires_at(anon_api, owner):
    body = {"username": "owner", "password": PASSWORD, "expires_in_days": 7}
    response = anon_api.post("/api/v1/auth/token/", body, format="json")
    assert response.status_code == 201
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at > timezone.now() + timedelta(days=6)


def test_wrong_password_is_401_in_the_error_shape(anon_api, owner):
    response = anon_api.post("/api/v1/auth/token/", {"username": "owner", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_password_login_asks_for_the_second_factor_when_2fa_is_on(anon_api, owner, authenticator):
    body = {"username": "owner", "password": PASSWORD}
    missing = anon_api.post("/api/v1/auth/token/", body)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "otp_required"
    wrong = anon_api.post("/api/v1/auth/token/", {**body, "otp": "000000"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "otp_invalid"
    authenticator.throttle_reset()  # django-otp makes a device wait after each wrong code
    right = anon_api.post("/api/v1/auth/token/", {**body, "otp": current_code(authenticator)})
    assert right.status_code == 201


def test_token_login_rejects_get(anon_api):
    assert anon_api.get("/api/v1/auth/token/").status_code == 405


def test_list_shows_own_tokens_without_secrets(api, owner, other_user):
    token_create(user=other_user, name="theirs")
    token_create(user=owner, name="mine")
    body = api.get(TOKENS).json()
    names = [row["name"] for row in body["results"]]
    assert "mine" in names and "theirs" not in names
    assert all("token" not in row and "secret_hash" not in row for row in body["results"])
    assert {"prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "is_active"} <= set(body["results"][0])


def test_create_returns_the_secret_once(api, owner):
    response = api.post(TOKENS, {"name": "deploy", "expires_in_days": 30}, format="json")
    assert response.status_code == 201
    secret = response.json()["token"]
    assert secret.startswith("ig_")
    listed = api.get(f"{TOKENS}{response.json()['id']}/").json()
    assert "token" not in listed and listed["name"] == "deploy" and listed["expires_at"]


def test_create_with_an_explicit_expiry(api):
    moment = (timezone.now() + timedelta(days=2)).isoformat()
    response = api.post(TOKENS, {"name": "x", "expires_at": moment}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "x", "expires_in_days": 0},
        {"name": "x", "expires_in_days": "soon"},
        {"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "x", "expires_at": "2999-01-01T00:00:00Z", "expires_in_days": 3},
    ],
)
def test_create_with_bad_input_is_400_with_a_reason(api, body):
    response = api.post(TOKENS, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["message"]


def test_revoke_by_delete_stops_the_token(api, owner):
    issued = token_create(user=owner, name="old")
    assert api.delete(f"{TOKENS}{issued.token.id}/").status_code == 204
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_revoke_by_post_returns_the_revoked_token(api, owner):
    issued = token_create(user=owner, name="old")
    response = api.post(f"{TOKENS}{issued.token.id}/revoke/")
    assert response.status_code == 200
    assert response.json()["is_active"] is False and response.json()["revoked_at"]


def test_revoke_rejects_get(api, owner):
    issued = token_create(user=owner, name="old")
    assert api.get(f"{TOKENS}{issued.token.id}/revoke/").status_code == 405
    assert api.put(f"{TOKENS}{issued.token.id}/", {}).status_code == 405


def test_another_users_token_is_404(api, other_user):
    theirs = token_create(user=other_user, name="theirs")
    for response in (
        api.get(f"{TOKENS}{theirs.token.id}/"),
        api.delete(f"{TOKENS}{theirs.token.id}/"),
        api.post(f"{TOKENS}{theirs.token.id}/revoke/"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert ApiToken.objects.get(pk=theirs.token.id).revoked_at is None


def test_anonymous_token_calls_are_401(anon_api, owner):
    issued = token_create(user=owner, name="x")
    assert anon_api.get(TOKENS).status_code == 401
    assert anon_api.post(TOKENS, {"name": "x"}).status_code == 401
    assert anon_api.delete(f"{TOKENS}{issued.token.id}/").status_code == 401
    assert anon_api.get("/api/v1/me/").status_code == 401


def test_me_shows_quota_use_and_the_rate_limit(api, make_batch):
    make_batch(prompts=["a", "b"], images_per_prompt=2)
    body = api.get("/api/v1/me/").json()
    daily = body["quotas"]["images_per_day"]
    assert daily["used"] == 4 and daily["remaining"] == daily["limit"] - 4 and daily["resets_at"]
    assert body["quotas"]["active_batches"]["used"] == 0
    assert body["rate_limits"]["api_requests_per_minute"]["limit"] == 120
    assert body["user"] == {
        "id": body["user"]["id"],
        "username": "owner",
        "email": "",
        "is_staff": False,
        "language": "",
        "two_factor_enabled": False,
        "recovery_codes_left": 0,
    }
