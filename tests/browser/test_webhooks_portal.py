"""Webhooks in the portal on a phone: the deliveries on the batch page, resending, the secret on the profile."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.webhook_secrets import webhook_secret_shown
from tests.browser.conftest import screenshot
from tests.browser.test_portal import log_in
from tests.fakeserver import Reply, fake_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_deliveries_resend_and_secret_rotation_on_a_phone(page, live_server, owner, make_batch, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.set_viewport_size({"width": 390, "height": 844})
    with fake_server() as receiver:
        path = "/hook/" + "long-path-segment-" * 8  # a long URL must wrap, not widen the page
        batch = make_batch(webhook_url=receiver.url + path, name="夜景")  # no route yet: answered 404
        receiver.route("POST", path, Reply(200))
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/batches/{batch.pk}/")
        section = page.locator("#webhooks")
        expect(section).to_contain_text("batch.finished")
        assert no_horizontal_overflow(page)
        screenshot(page, "webhooks-01-batch-phone")
        section.get_by_role("button", name="重新傳送").click()
        page.wait_for_url(re.compile(r"#webhooks$"))
        expect(page.locator(".messages")).to_contain_text("Webhook 正在重新傳送")
        assert len(receiver.requests) == 2
    page.goto(f"{live_server.url}/accounts/")
    secret = webhook_secret_shown(user=owner)
    expect(page.locator("#webhook-secret-value")).to_have_value(secret or "missing")
    assert no_horizontal_overflow(page)
    page.focus("#webhook-secret-confirm")
    page.keyboard.press("Space")
    page.get_by_role("button", name="更換密鑰").click()
    page.wait_for_url(re.compile(r"#webhook-secret$"))
    assert webhook_secret_shown(user=owner) != secret
    screenshot(page, "webhooks-02-secret-phone")
    assert problems == []
