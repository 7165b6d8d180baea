"""Staff add colleagues from the portal: the New user page and the user_create service."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.services import user_create
from imagegen.errors import Forbidden, ValidationFailed
from tests.conftest import PASSWORD

URL = "/accounts/users/new/"
NEW = {"username": "colleague", "email": "c@example.com", "password": "a long enough passphrase 42"}


def test_staff_create_a_user_who_can_then_log_in(client, staff):
    client.force_login(staff)
    response = client.post(URL, {**NEW, "is_staff": ""})
    assert response.status_code == 302 and response["Location"] == URL
    user = User.objects.get(username="colleague")
    assert user.email == "c@example.com" and not user.is_staff and user.check_password(NEW["password"])
    event = AuditEvent.objects.get(event="user.created")
    assert event.user == staff and event.details == {"target": "colleague", "is_staff": False}
    client.logout()
    assert client.login(username="colleague", password=NEW["password"])


def test_staff_can_create_another_staff_member(client, staff):
    client.force_login(staff)
    client.post(URL, {**NEW, "is_staff": "on"})
    assert User.objects.get(username="colleague").is_staff


def test_the_page_is_in_the_staff_header_and_translated(client, staff):
    client.force_login(staff)
    page = client.get(reverse("generation:batch_list"), HTTP_ACCEPT_LANGUAGE="zh-TW").content.decode()
    assert f'href="{URL}"' in page and "新增使用者" in page
    form = client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-TW").content.decode()
    assert "初始密碼" in form and 'type="email"' in form


def test_ordinary_users_neither_see_nor_open_it(client, owner):
    client.force_login(owner)
    assert URL not in client.get(reverse("generation:batch_list")).content.decode()
    assert client.get(URL).status_code == 404
    assert client.post(URL, NEW).status_code == 404
    assert not User.objects.filter(username="colleague").exists()


def test_anonymous_visitors_are_sent_to_the_login(client, db):
    response = client.post(URL, NEW)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not User.objects.filter(username="colleague").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"username": "owner"}, "username"),
        ({"username": "OWNER"}, "username"),
        ({"username": "bad name!"}, "username"),
        ({"password": "123"}, "password"),
        ({"email": "not-an-address"}, "email"),
        ({"username": ""}, "username"),
    ],
)
def test_bad_input_is_shown_on_the_form_and_nothing_is_created(client, staff, owner, change, field):
    client.force_login(staff)
    before = User.objects.count()
    response = client.post(URL, {**NEW, **change})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert User.objects.count() == before


def test_only_staff_may_call_the_service(owner):
    with pytest.raises(Forbidden):
        user_create(actor=owner, username="x", email="", password=PASSWORD)


def test_the_service_refuses_a_taken_name_whatever_its_case(staff, owner):
    with pytest.raises(ValidationFailed) as error:
        user_create(actor=staff, username="Owner", email="", password=PASSWORD)
    assert error.value.code == "username_taken"


def test_wrong_method_is_harmless(client, staff):
    client.force_login(staff)
    assert client.put(URL, NEW).status_code == 200  # shows the empty form, creates nothing
    assert not User.objects.filter(username="colleague").exists()
