"""Output settings in a real browser on a phone: submit a batch with a watermark, download, re-process."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from generation import renditions
from generation.models import Batch, OutputJob, Rendition
from generation.output import OutputSettings
from tests.browser.conftest import screenshot
from tests.browser.test_portal import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def assert_no_horizontal_overflow(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url


def test_output_settings_on_a_phone(page, live_server, owner):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/new/")
    expect(page.locator("#id_output-format")).to_be_hidden()  # the fieldset starts closed
    page.fill("#id_prompts", "山水畫")
    page.select_option("#id_size", "256x256")
    page.click("details.output-settings > summary")
    page.select_option("#id_output-format", "webp")
    page.fill("#id_output-watermark_text", "© 範例")
    assert_no_horizontal_overflow(page)
    screenshot(page, "output-01-new-batch-phone")
    page.click("button:has-text('送出批次')")
    page.wait_for_url(re.compile(r"/batches/[0-9a-f-]{36}/$"))
    page.wait_for_selector("#batch-status [data-status=completed]", timeout=30_000)
    assert_no_horizontal_overflow(page)

    page.select_option("#reprocess #id_output-format", "jpeg")
    page.fill("#reprocess #id_output-quality", "70")
    page.click("#reprocess button[type=submit]")
    expect(page.locator(".output-jobs")).to_contain_text("已完成 1 / 1")
    assert_no_horizontal_overflow(page)
    screenshot(page, "output-02-batch-reprocessed-phone")

    generation = Batch.objects.get().generations.get()
    page.goto(f"{live_server.url}/batches/images/{generation.pk}/")
    links = page.locator(".renditions a")
    expect(links).to_have_count(2)
    assert sorted(Rendition.objects.values_list("format", flat=True)) == ["jpeg", "webp"]
    with page.expect_download() as download:
        links.first.click()
    assert download.value.suggested_filename.endswith(".webp")
    assert_no_horizontal_overflow(page)
    screenshot(page, "output-03-image-renditions-phone")


def test_reprocess_progress_updates_live(page, live_server, owner, make_batch):
    batch = make_batch(prompts=["a fox"])
    settings = OutputSettings(format="webp")
    OutputJob.objects.create(batch=batch, settings=settings.to_json(), settings_hash=settings.settings_hash, total=1)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    line = page.locator(".job-progress")
    expect(line).to_have_attribute("data-status", "running")
    expect(line).to_contain_text("已完成 0 / 1")
    renditions.rendition_make(generation_id=batch.generations.get().pk, output=settings)
    expect(line).to_have_attribute("data-status", "finished", timeout=10_000)
    expect(line).to_contain_text("已完成 1 / 1，失敗 0")
