"""Roles: staff reach the admin and its audit log (read-only); ordinary users do not."""

from __future__ import annotations

from django.urls import reverse

from accounts.audit import audit_record
from accounts.models import AuditEvent
from tests.accounts.conftest import portal_login


def test_ordinary_users_cannot_open_the_admin(client, owner):
    portal_login(client, "owner")
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302


def test_staff_read_the_audit_log_but_cannot_change_it(client, staff, owner):
    entry = audit_record(event="login.failed", username="owner")
    client.force_login(staff)
    assert client.get(reverse("admin:accounts_auditevent_changelist")).status_code == 200
    assert client.get(reverse("admin:accounts_auditevent_change", args=[entry.pk])).status_code == 200
    assert client.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    assert client.post(reverse("admin:accounts_auditevent_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=entry.pk).exists()


def test_staff_can_create_users(client, staff):
    client.force_login(staff)
    password = "a new users passphrase 5"
    response = client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "hired",
            "password1": password,
            "password2": password,
            "usable_password": "true",
            "quota-TOTAL_FORMS": "0",
            "quota-INITIAL_FORMS": "0",
            "quota-MIN_NUM_FORMS": "0",
            "quota-MAX_NUM_FORMS": "1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert AuditEvent.objects.filter(event="admin.user_created", details__target="hired").exists()


def test_staff_cannot_deactivate_themselves(client, staff):
    client.force_login(staff)
    client.post(reverse("admin:auth_user_changelist"), {"action": "deactivate", "_selected_action": [staff.pk]})
    staff.refresh_from_db()
    assert staff.is_active


def test_staff_see_batches_with_filters(client, staff, make_batch):
    make_batch()
    client.force_login(staff)
    assert client.get(reverse("admin:generation_batch_changelist") + "?status__exact=completed").status_code == 200
