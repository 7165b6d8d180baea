"""The New batch form in a real browser: a double click queues one batch; the cached badge shows on a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from generation.models import Batch
from tests.browser.conftest import screenshot
from tests.browser.test_portal import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_double_click_queues_one_batch_and_repeats_are_cached(page, live_server, owner):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    for _ in range(2):
        page.goto(f"{live_server.url}/batches/new/")
        page.fill("#id_prompts", "一隻藍色的貓 🐱\n一隻藍色的貓 🐱")
        page.select_option("#id_size", "256x256")
        page.fill("#id_seed", "7")
        assert page.locator("#id_cache").is_checked()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.locator("#batch-submit").dblclick()
        page.wait_for_url(re.compile(r"/batches/[0-9a-f-]{36}/$"))
    assert Batch.objects.count() == 2  # one per visit of the form, however many clicks
    page.wait_for_selector("#grid .cached-badge")
    # The second batch repeats the first: both of its images are copies; in the first, the twin is.
    expect(page.locator("#grid .cached-badge")).to_have_count(2)
    assert page.locator("#grid .cached-badge").first.inner_text() == "快取"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "cache-01-cached-badges-phone")
