"""Two-factor: enrolment with a real TOTP code, two-step portal login, recovery codes, staff enforcement."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken

from accounts.models import Authenticator
from accounts.two_factor import two_factor_enabled
from tests.accounts.conftest import current_code, portal_login
from tests.conftest import PASSWORD


def _codes(response) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9]+)</code></li>", response.content.decode())


def test_setup_shows_a_qr_code_and_turns_on_with_a_valid_code(owner_client, owner):
    page = owner_client.get(reverse("accounts:two_factor_setup"))
    assert page.status_code == 200
    assert 'src="data:image/svg+xml;base64,' in page.content.decode()
    device = Authenticator.objects.get(user=owner, confirmed=False)
    response = owner_client.post(reverse("accounts:two_factor_setup"), {"token": current_code(device)})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert len(_codes(response)) == 10
    assert two_factor_enabled(user=owner)


def test_setup_refuses_a_wrong_code_and_stays_off(owner_client, owner):
    owner_client.get(reverse("accounts:two_factor_setup"))
    response = owner_client.post(reverse("accounts:two_factor_setup"), {"token": "123456"})
    assert response.status_code == 200
    assert "not right" in response.content.decode()
    assert not two_factor_enabled(user=owner)


def test_setup_needs_login(client):
    response = client.get(reverse("accounts:two_factor_setup"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_login_with_2fa_needs_the_code_before_the_session_exists(client, owner, authenticator):
    response = portal_login(client, "owner")
    assert response.status_code == 302 and response["Location"] == reverse("accounts:login_verify")
    assert client.get(reverse("generation:batch_list")).status_code == 302  # not signed in yet
    wrong = client.post(reverse("accounts:login_verify"), {"token": "000000"})
    assert wrong.status_code == 200 and "_auth_user_id" not in client.session
    authenticator.throttle_reset()
    right = client.post(reverse("accounts:login_verify"), {"token": current_code(authenticator)})
    assert right.status_code == 302
    assert client.get(reverse("generation:batch_list")).status_code == 200


def test_a_code_cannot_be_used_twice(client, owner, authenticator):
    code = current_code(authenticator)
    portal_login(client, "owner")
    assert client.post(reverse("accounts:login_verify"), {"token": code}).status_code == 302
    client.post(reverse("accounts:logout"))
    portal_login(client, "owner")
    assert client.post(reverse("accounts:login_verify"), {"token": code}).status_code == 200


def test_verify_step_without_a_password_step_goes_back_to_login(client):
    response = client.get(reverse("accounts:login_verify"))
    assert response.status_code == 302 and response["Location"] == reverse("accounts:login")


def test_recovery_code_logs_in_once(client, owner_client, owner, authenticator):
    page = owner_client.post(reverse("accounts:recovery_codes"), {"password": PASSWORD})
    code = _codes(page)[0]
    owner_client.post(reverse("accounts:logout"))
    portal_login(client, "owner")
    assert client.post(reverse("accounts:login_verify"), {"token": code.upper()}).status_code == 302
    assert StaticToken.objects.filter(device__user=owner).count() == 9
    client.post(reverse("accounts:logout"))
    portal_login(client, "owner")
    assert client.post(reverse("accounts:login_verify"), {"token": code}).status_code == 200


def test_regenerating_recovery_codes_needs_the_password(owner_client, owner, authenticator):
    response = owner_client.post(reverse("accounts:recovery_codes"), {"password": "wrong"})
    assert response.status_code == 302
    assert StaticToken.objects.filter(device__user=owner).count() == 0


def test_disable_needs_the_password_then_turns_2fa_off(owner_client, owner, authenticator):
    owner_client.post(reverse("accounts:two_factor_disable"), {"password": "wrong"})
    assert two_factor_enabled(user=owner)
    owner_client.post(reverse("accounts:two_factor_disable"), {"password": PASSWORD})
    assert not two_factor_enabled(user=owner)


def test_disable_rejects_get(owner_client):
    assert owner_client.get(reverse("accounts:two_factor_disable")).status_code == 405


def test_status_page_says_whether_2fa_is_on(owner_client, authenticator):
    assert "recovery" in owner_client.get(reverse("accounts:two_factor")).content.decode()


@pytest.fixture
def require_staff_2fa(settings):
    settings.REQUIRE_2FA_FOR_STAFF = True


def test_staff_without_2fa_is_sent_to_enrol_when_required(client, staff, require_staff_2fa):
    portal_login(client, "staff")
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and response["Location"] == reverse("accounts:two_factor")
    api = client.get("/api/v1/me/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "two_factor_required"


def test_staff_reach_admin_after_enrolling(client, staff, require_staff_2fa):
    portal_login(client, "staff")
    client.get(reverse("accounts:two_factor_setup"))
    device = Authenticator.objects.get(user=staff, confirmed=False)
    client.post(reverse("accounts:two_factor_setup"), {"token": current_code(device)})
    assert client.get(reverse("admin:index")).status_code == 200


def test_staff_without_2fa_reach_admin_when_not_required(client, staff):
    portal_login(client, "staff")
    assert client.get(reverse("admin:index")).status_code == 200


def test_admin_login_page_goes_through_the_portal_login(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_ordinary_users_are_not_affected_by_the_staff_rule(client, owner, require_staff_2fa):
    portal_login(client, "owner")
    assert client.get(reverse("generation:batch_list")).status_code == 200


def test_the_two_password_fields_on_the_status_page_have_their_own_ids(owner_client, authenticator):
    content = owner_client.get(reverse("accounts:two_factor")).content.decode()
    assert content.count('id="id_codes_password"') == 1 and content.count('id="id_disable_password"') == 1
    assert 'for="id_codes_password"' in content and 'for="id_disable_password"' in content


def test_a_staff_bearer_token_is_refused_until_two_factor_is_on(staff, require_staff_2fa):
    from tests.conftest import api_client_for

    response = api_client_for(staff).get("/api/v1/me/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "two_factor_required"


def test_a_staff_token_issued_with_the_second_factor_works(anon_api, staff, require_staff_2fa):
    device = Authenticator.objects.create(user=staff, name="authenticator", confirmed=True)
    body = {"username": "staff", "password": PASSWORD, "otp": current_code(device)}
    secret = anon_api.post("/api/v1/auth/token/", body, format="json").json()["token"]
    assert anon_api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_enrolling_in_two_factor_ends_every_existing_token(owner_client, owner):
    from tests.conftest import api_client_for

    api = api_client_for(owner)
    assert api.get("/api/v1/me/").status_code == 200
    owner_client.get(reverse("accounts:two_factor_setup"))
    device = Authenticator.objects.get(user=owner, confirmed=False)
    owner_client.post(reverse("accounts:two_factor_setup"), {"token": current_code(device)})
    assert api.get("/api/v1/me/").status_code == 401


def test_a_signed_in_user_who_is_not_staff_gets_a_clear_403_from_the_admin(client, owner):
    portal_login(client, "owner")
    response = client.get(reverse("admin:index"), follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) == 1
    assert "not a staff account" in response.content.decode()


def test_the_authenticator_secret_is_stored_encrypted(owner_client, owner):
    from base64 import b32encode
    from binascii import hexlify

    owner_client.get(reverse("accounts:two_factor_setup"))
    device = Authenticator.objects.get(user=owner, confirmed=False)
    stored = Authenticator.objects.filter(pk=device.pk).values_list("encrypted_key", flat=True).get()
    secret = device.bin_key
    assert len(secret) == 20
    assert hexlify(secret).decode() not in stored and b32encode(secret).decode().rstrip("=") not in stored


def test_existing_plain_text_devices_are_moved_to_encrypted_authenticators(client, owner):
    import importlib

    from django.apps import apps
    from django_otp.plugins.otp_totp.models import TOTPDevice

    migration = importlib.import_module("accounts.migrations.0004_hardening")
    plain = TOTPDevice.objects.create(user=owner, name="authenticator", confirmed=True)
    migration.encrypt_existing_authenticators(apps, None)
    assert not TOTPDevice.objects.exists()
    moved = Authenticator.objects.get(user=owner)
    assert moved.bin_key == plain.bin_key and moved.confirmed
    response = portal_login(client, "owner")
    assert response["Location"] == reverse("accounts:login_verify")
    assert client.post(reverse("accounts:login_verify"), {"token": current_code(moved)}).status_code == 302
