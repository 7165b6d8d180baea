"""Portal account pages: profile with language and quotas, tokens page, password change and reset."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import ApiToken, Profile
from accounts.services import token_authenticate, token_create
from tests.accounts.conftest import portal_login
from tests.conftest import PASSWORD


def test_profile_shows_quota_use(owner_client, make_batch):
    make_batch(prompts=["a", "b"])
    page = owner_client.get(reverse("accounts:profile")).content.decode()
    assert "Images today" in page and "<td>2</td>" in page and "998" in page


def test_language_preference_is_saved_and_applied(owner_client, owner, client):
    response = owner_client.post(reverse("accounts:profile"), {"language": "zh-hant"})
    assert response.status_code == 302
    assert Profile.objects.get(user=owner).language == "zh-hant"
    assert "登出" in owner_client.get(reverse("accounts:profile")).content.decode()


def test_language_preference_applies_at_the_next_login(client, owner):
    Profile.objects.create(user=owner, language="zh-hant")
    response = portal_login(client, "owner")
    assert response.cookies["django_language"].value == "zh-hant"


def test_unknown_language_is_a_form_error(owner_client, owner):
    response = owner_client.post(reverse("accounts:profile"), {"language": "klingon"})
    assert response.status_code == 200 and not Profile.objects.filter(user=owner).exists()


def test_profile_needs_login(client):
    assert client.get(reverse("accounts:profile")).status_code == 302


def test_tokens_page_creates_a_token_and_shows_the_secret_once(owner_client, owner):
    response = owner_client.post(reverse("accounts:tokens"), {"name": "laptop", "expires_in_days": "30"})
    secret = re.search(r'value="(ig_[^"]+)"', response.content.decode()).group(1)
    assert token_authenticate(raw=secret).user == owner
    assert "no-store" in response["Cache-Control"]
    assert secret not in owner_client.get(reverse("accounts:tokens")).content.decode()


def test_tokens_page_refuses_a_bad_name(owner_client, owner):
    response = owner_client.post(reverse("accounts:tokens"), {"name": "", "expires_in_days": "30"})
    assert response.status_code == 200 and not ApiToken.objects.filter(user=owner).exists()
    response = owner_client.post(reverse("accounts:tokens"), {"name": "x", "expires_in_days": "12"})
    assert not ApiToken.objects.filter(user=owner).exists()


def test_tokens_page_revokes_own_token(owner_client, owner):
    issued = token_create(user=owner, name="old")
    assert owner_client.post(reverse("accounts:token_revoke", args=[issued.token.id])).status_code == 302
    assert token_authenticate(raw=issued.secret) is None


def test_token_revoke_rejects_get(owner_client, owner):
    issued = token_create(user=owner, name="old")
    assert owner_client.get(reverse("accounts:token_revoke", args=[issued.token.id])).status_code == 405


def test_password_change_keeps_the_session_and_validates(owner_client, owner):
    weak = owner_client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "123", "new_password2": "123"},
    )
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    new = "another long passphrase 7"
    response = owner_client.post(
        reverse("accounts:password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    assert owner_client.get(reverse("accounts:profile")).status_code == 200
    owner.refresh_from_db()
    assert owner.check_password(new)


def test_password_reset_sends_a_link_that_sets_a_new_password(client, owner):
    owner.email = "owner@example.com"
    owner.save()
    response = client.post(reverse("accounts:password_reset"), {"email": "owner@example.com"})
    assert response.status_code == 302 and len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/password/reset/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    new = "reset passphrase for owner 9"
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(new)


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, db):
    response = client.post(reverse("accounts:password_reset"), {"email": "ghost@example.com"})
    assert response.status_code == 302 and mail.outbox == []


def test_password_reset_is_rate_limited_per_ip(client, db, settings):
    settings.LOGIN_RATE_LIMIT = "1/15min"
    client.post(reverse("accounts:password_reset"), {"email": "a@example.com"})
    assert client.post(reverse("accounts:password_reset"), {"email": "b@example.com"}).status_code == 429


def test_logout_rejects_get(owner_client):
    assert owner_client.get(reverse("accounts:logout")).status_code == 405


def test_login_form_errors_are_shown(client, db):
    response = portal_login(client, "owner", "wrong")
    assert response.status_code == 200 and "Wrong username or password" in response.content.decode()
    assert client.post(reverse("accounts:login"), {"username": ""}).status_code == 200


def test_login_redirects_only_to_safe_next_urls(client, owner):
    response = client.post(
        reverse("accounts:login"), {"username": "owner", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("generation:batch_list")


@pytest.mark.parametrize("next_url", ["x", "batch_list", "//evil.example/", "javascript:alert(1)"])
def test_a_next_that_is_not_a_local_path_goes_home_after_the_right_password(client, owner, next_url):
    response = client.post(reverse("accounts:login") + f"?next={next_url}", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("generation:batch_list")
    assert client.get(reverse("accounts:login") + f"?next={next_url}").status_code == 302


def test_changing_the_password_ends_every_token(client, owner):
    from tests.conftest import api_client_for

    api = api_client_for(owner)
    client.force_login(owner)
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a new long passphrase 42",
            "new_password2": "a new long passphrase 42",
        },
    )
    assert response.status_code == 302
    assert api.get("/api/v1/me/").status_code == 401


def test_resetting_the_password_ends_every_token(client, owner):
    from tests.conftest import api_client_for

    owner.email = "owner@example.com"
    owner.save()
    api = api_client_for(owner)
    client.post(reverse("accounts:password_reset"), {"email": "owner@example.com"})
    link = re.search(r"https?://[^/]+(/accounts/password/reset/\S+/)", mail.outbox[-1].body).group(1)
    form_page = client.get(link, follow=True)
    new = "a new long passphrase 42"
    client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert api.get("/api/v1/me/").status_code == 401


def test_an_admin_setting_a_password_ends_the_users_tokens(client, owner, staff):
    from tests.conftest import api_client_for

    api = api_client_for(owner)
    client.force_login(staff)
    new = "a new long passphrase 42"
    url = reverse("admin:auth_user_password_change", args=[owner.pk])
    response = client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    assert api.get("/api/v1/me/").status_code == 401
