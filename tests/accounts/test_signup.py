"""Self sign-up exists only when ALLOW_SIGNUP is on, in the portal and the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from accounts.models import AuditEvent

GOOD = {
    "username": "newbie",
    "email": "n@example.com",
    "password1": "a fine passphrase 1",
    "password2": "a fine passphrase 1",
}


@pytest.fixture
def signup_on(settings):
    settings.ALLOW_SIGNUP = True


def test_signup_is_off_by_default(client, anon_api, db):
    assert client.get(reverse("accounts:signup")).status_code == 404
    response = anon_api.post("/api/v1/auth/signup/", {"username": "x", "password": "a fine passphrase 1"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "signup_disabled"


def test_portal_signup_creates_an_ordinary_user_and_signs_in(client, db, signup_on):
    response = client.post(reverse("accounts:signup"), GOOD)
    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    assert not user.is_staff and not user.is_superuser
    assert client.get(reverse("accounts:profile")).status_code == 200
    assert AuditEvent.objects.filter(event="account.signed_up", user=user).exists()


def test_portal_signup_validates_the_password(client, db, signup_on):
    response = client.post(reverse("accounts:signup"), {**GOOD, "password1": "123", "password2": "123"})
    assert response.status_code == 200 and not User.objects.filter(username="newbie").exists()


def test_api_signup_creates_a_user(anon_api, db, signup_on):
    response = anon_api.post("/api/v1/auth/signup/", {"username": "apiuser", "password": "a fine passphrase 1"})
    assert response.status_code == 201
    assert response.json()["user"]["username"] == "apiuser"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "owner", "password": "a fine passphrase 1"},
        {"username": "bad name!", "password": "a fine passphrase 1"},
        {"username": "x2", "password": "password"},
        {"username": "x3"},
    ],
)
def test_api_signup_refuses_bad_input(anon_api, owner, signup_on, body):
    response = anon_api.post("/api/v1/auth/signup/", body)
    assert response.status_code == 400 and response.json()["error"]["message"]


def test_signup_rejects_get_on_the_api(anon_api, signup_on):
    assert anon_api.get("/api/v1/auth/signup/").status_code == 405
