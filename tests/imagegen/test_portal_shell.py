"""The layout every portal page shares: language on a first visit, skip link, menu, theme, shortcuts."""

from __future__ import annotations

import re

from django.urls import reverse

from generation import views


def test_a_first_visit_gets_traditional_chinese_even_from_an_english_browser(client, db, settings):
    settings.LANGUAGE_CODE = "zh-hant"
    settings.LANGUAGE_FROM_BROWSER = False
    page = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert '<html lang="zh-hant">' in page.content.decode()


def test_the_language_switch_then_sticks(client, db, settings):
    settings.LANGUAGE_CODE = "zh-hant"
    settings.LANGUAGE_FROM_BROWSER = False
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="zh-TW")
    assert '<html lang="en">' in page.content.decode()


def test_the_browser_language_is_followed_when_the_operator_asks(client, db, settings):
    settings.LANGUAGE_CODE = "zh-hant"
    settings.LANGUAGE_FROM_BROWSER = True
    page = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="en-US")
    assert '<html lang="en">' in page.content.decode()


def test_the_api_still_answers_in_the_language_a_client_asks_for(client, db, settings):
    settings.LANGUAGE_CODE = "zh-hant"
    settings.LANGUAGE_FROM_BROWSER = False
    response = client.get("/api/v1/batches/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 401
    assert response.json()["error"]["message"].isascii()


def test_every_page_starts_with_a_skip_link_and_has_a_menu_button_and_theme_switch(client, owner):
    client.force_login(owner)
    page = client.get(reverse("generation:batch_list")).content.decode()
    body = page[page.index("<body>") :]
    assert body.index('class="skip-link" href="#content"') < body.index('<header class="topbar">')
    assert 'id="content"' in page
    assert 'aria-expanded="false" aria-controls="topbar-menu"' in page
    assert '<select id="theme-switch">' in page
    assert '<dialog class="help-dialog" id="shortcuts-help"' in page
    # Scripts are files from our origin (CSP): the theme before paint, the rest deferred.
    assert '<script src="/static/js/theme.js"></script>' in page
    assert '<script src="/static/js/base.js" defer></script>' in page
    assert "<script>" not in page


def test_pagination_labels_say_what_they_lead_to(client, owner, make_batch, monkeypatch):
    monkeypatch.setattr(views, "HISTORY_PAGE_SIZE", 1)
    client.force_login(owner)
    make_batch()
    make_batch()
    first = client.get(reverse("generation:batch_list")).content.decode()
    assert "Older batches →" in first
    found = re.search(r'href="\?(cursor=[^"]+)" rel="next"', first)
    assert found is not None
    older = found.group(1)
    second = client.get(reverse("generation:batch_list") + "?" + older.replace("&amp;", "&")).content.decode()
    assert "← Newest batches" in second
