"""Audit log: security events are recorded with time, user, IP and user agent."""

from __future__ import annotations

from django.urls import reverse

from accounts.models import AuditEvent, Authenticator, UserQuota
from tests.accounts.conftest import current_code, portal_login
from tests.conftest import PASSWORD


def events(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("event", flat=True))


def test_portal_login_success_and_logout_are_recorded_with_ip_and_agent(client, owner):
    portal_login(client, "owner", HTTP_USER_AGENT="pytest-browser", REMOTE_ADDR="198.51.100.4")
    client.post(reverse("accounts:logout"))
    entry = AuditEvent.objects.get(event="login.succeeded")
    assert entry.user == owner and entry.ip_address == "198.51.100.4" and entry.user_agent == "pytest-browser"
    assert entry.details["channel"] == "portal" and entry.created_at
    assert events(user=owner)[-2:] == ["login.succeeded", "logout"]


def test_failed_login_is_recorded_with_the_attempted_username(client, db):
    portal_login(client, "nobody", "wrong")
    entry = AuditEvent.objects.get(event="login.failed")
    assert entry.username == "nobody" and entry.user is None


def test_rate_limited_login_is_recorded(client, db, settings):
    settings.LOGIN_RATE_LIMIT = "1/15min"
    portal_login(client, "x", "wrong")
    portal_login(client, "x", "wrong")
    assert "login.rate_limited" in events()


def test_token_login_create_and_revoke_are_recorded(anon_api, api, owner):
    anon_api.post("/api/v1/auth/token/", {"username": "owner", "password": PASSWORD})
    token_id = api.post("/api/v1/tokens/", {"name": "ci"}).json()["id"]
    api.delete(f"/api/v1/tokens/{token_id}/")
    recorded = events(user=owner)
    assert recorded.count("token.created") == 3  # the fixture's, the login's and the API's
    assert "login.succeeded" in recorded and recorded[-1] == "token.revoked"


def test_two_factor_changes_are_recorded(client, owner):
    client.force_login(owner)
    client.get(reverse("accounts:two_factor_setup"))
    device = Authenticator.objects.get(user=owner)
    client.post(reverse("accounts:two_factor_setup"), {"token": current_code(device)})
    client.post(reverse("accounts:recovery_codes"), {"password": PASSWORD})
    client.post(reverse("accounts:two_factor_disable"), {"password": PASSWORD})
    assert events(user=owner) == [
        "two_factor.enabled",
        "two_factor.recovery_codes_regenerated",
        "two_factor.disabled",
    ]


def test_password_change_is_recorded(client, owner):
    client.force_login(owner)
    new = "a brand new passphrase 42"
    client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert events(user=owner) == ["password.changed"]


def test_quota_change_and_deactivation_in_admin_are_recorded(client, staff, owner):
    client.force_login(staff)
    url = reverse("admin:auth_user_change", args=[owner.pk])
    page = client.get(url)
    assert page.status_code == 200
    form = {
        "username": "owner",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
        "quota-TOTAL_FORMS": "1",
        "quota-INITIAL_FORMS": "0",
        "quota-MIN_NUM_FORMS": "0",
        "quota-MAX_NUM_FORMS": "1",
        "quota-0-daily_images": "7",
        "quota-0-max_images_per_batch": "",
        "quota-0-max_active_batches": "",
        "quota-0-user": str(owner.pk),
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert UserQuota.objects.get(user=owner).daily_images == 7
    entry = AuditEvent.objects.get(event="quota.changed")
    assert entry.user == staff and entry.details["target"] == "owner" and entry.details["daily_images"] == 7
    client.post(reverse("admin:auth_user_changelist"), {"action": "deactivate", "_selected_action": [owner.pk]})
    owner.refresh_from_db()
    assert not owner.is_active
    assert AuditEvent.objects.filter(event="user.deactivated", user=staff, details__target="owner").exists()


def test_admin_batch_actions_are_recorded(client, staff, make_batch):
    batch = make_batch(run=False)
    client.force_login(staff)
    client.post(reverse("admin:generation_batch_changelist"), {"action": "cancel", "_selected_action": [batch.pk]})
    entry = AuditEvent.objects.get(event="admin.batch_action")
    assert entry.user == staff and entry.details == {"action": "batch_cancel", "batch": str(batch.pk)}


def test_admin_cancels_a_comparison_through_the_service_and_records_it(client, staff, owner):
    from generation import comparisons
    from generation.comparisons import ArmRequest
    from generation.models import Batch, Comparison

    arms = [ArmRequest(provider="local", width=256, height=256), ArmRequest(provider="local", width=512, height=512)]
    spec = comparisons.check_comparison_request(prompts=["a fox"], arms=arms, user_id=owner.pk)
    comparison = comparisons.comparison_create(owner=owner, spec=spec)
    client.force_login(staff)
    page = client.get(reverse("admin:generation_comparison_change", args=[comparison.pk]))
    assert page.status_code == 200 and "256" in page.content.decode()
    changelist = reverse("admin:generation_comparison_changelist")
    client.post(changelist, {"action": "cancel", "_selected_action": [comparison.pk]})
    assert set(Batch.objects.values_list("status", flat=True)) == {"cancelled"}
    entry = AuditEvent.objects.get(event="admin.comparison_cancel")
    assert entry.user == staff and entry.details == {"comparison": str(comparison.pk)}
    assert Comparison.objects.count() == 1
    for name in ("rendition", "outputjob"):
        assert client.get(reverse(f"admin:generation_{name}_changelist")).status_code == 200
