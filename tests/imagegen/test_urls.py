"""Root URLs: the portal's own error pages, the favicon and the admin's name."""

from __future__ import annotations

from django.urls import reverse


def test_an_unknown_page_is_a_portal_page_in_the_users_language(client, owner):
    client.force_login(owner)
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="zh-TW")
    content = response.content.decode()
    assert response.status_code == 404
    assert "找不到這個頁面" in content and 'class="topbar"' in content
    assert reverse("generation:batch_list") in content


def test_an_unknown_api_path_is_still_json(client, db):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_server_error_page_needs_no_request_context(client, db):
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "ImageGen" in html and "base.css" in html


def test_favicon_is_served(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith(".svg")


def test_admin_is_named_after_the_platform(client, staff):
    client.force_login(staff)
    content = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "ImageGen administration" in content and "Django administration" not in content
