"""The portal in a real browser: log in, submit a batch, watch it fill in live, open an image."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from generation.models import Batch
from tests.browser.conftest import screenshot, switch_language
from tests.conftest import PASSWORD
from tests.integration.cluster import cluster_env, running_cluster

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(r"/batches/$"))


def test_log_in_submit_a_batch_and_see_it_fill_in(page, live_server, owner, real_queue, tmp_path: Path):
    log_in(page, live_server.url)
    assert page.locator("h1").inner_text() == "歷史紀錄"
    screenshot(page, "01-history-empty")

    page.click("text=新增批次 >> nth=0")
    page.fill("#id_prompts", "紅色夕陽下的海邊 🌅\n一隻藍色的貓 🐱\nforest at night\n山水畫")
    page.select_option("#id_size", "256x256")
    page.fill("#id_images_per_prompt", "2")
    assert "4 個提示詞 → 8 張圖片" in page.locator("#prompt-count").inner_text()
    screenshot(page, "02-new-batch")
    page.click("button:has-text('送出批次')")
    page.wait_for_url(re.compile(r"/batches/[0-9a-f-]{36}/$"))
    batch = Batch.objects.get()
    assert batch.total == 8
    screenshot(page, "03-batch-queued")

    env = cluster_env(tmp_path, Q_WORKERS="2", LOCAL_PROVIDER_DELAY="0.4")
    with running_cluster(env, tmp_path / "cluster.log"):
        # No reload: the page's script updates the bar and the tiles as images arrive.
        page.locator("#grid img").nth(2).wait_for(timeout=60_000)
        screenshot(page, "04-batch-running")
        expect(page.locator("#grid img")).to_have_count(8, timeout=60_000)
        page.wait_for_selector("#batch-status [data-status=completed]")
    expect(page.locator("#percent")).to_have_text("100%")
    expect(page.locator("#count-completed")).to_have_text("8")
    screenshot(page, "05-batch-completed")

    page.locator("#grid a.tile-open").first.click()  # the lightbox; its "Details" opens the image's page
    page.locator("#lightbox .lightbox-details").click()
    page.wait_for_selector(".viewer-image img")
    assert "紅色夕陽下的海邊 🌅" in page.locator(".meta .prompt").inner_text()
    # The element is there before the PNG has arrived: wait for it to load (or fail) first.
    page.wait_for_function("() => document.querySelector('.viewer-image img').complete", timeout=30_000)
    assert page.locator(".viewer-image img").evaluate("img => img.naturalWidth") == 256
    screenshot(page, "06-image-detail")

    switch_language(page, "en")
    page.wait_for_selector("text=Download PNG")
    screenshot(page, "07-image-detail-english")


def test_new_batch_form_shows_errors_in_place(page, live_server, owner):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/new/")
    page.fill("#id_prompts", "a {broken")
    page.check("#id_template")
    page.click("button:has-text('送出批次')")
    # The form comes back from the server: wait for the answered page, not the one that sent it.
    expect(page.locator(".has-error .form-error")).to_have_count(1)
    expect(page.locator("#id_prompts")).to_have_value("a {broken")
    screenshot(page, "08-new-batch-error")
    assert Batch.objects.count() == 0


def test_prompt_count_follows_template_expansion(page, live_server, owner):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/new/")
    page.fill("#id_prompts", "a {red|blue} {cat|dog} 🐱\n山水畫")
    assert "2 個提示詞 → 2 張圖片" in page.locator("#prompt-count").inner_text()
    page.check("#id_template")
    assert "5 個提示詞 → 5 張圖片" in page.locator("#prompt-count").inner_text()


PAGES = [
    "/batches/",
    "/batches/new/",
    "/batches/keys/",
    "/accounts/",
    "/accounts/password/",
    "/accounts/tokens/",
    "/accounts/two-factor/",
    "/accounts/two-factor/setup/",
    "/monitoring/",
    "/api/docs/",
    "/admin/",
]


def test_every_page_loads_without_console_errors_or_csp_violations(page, live_server, staff):
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(r"/batches/$"))
    for path in PAGES:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
    screenshot(page, "09-admin-index")
    assert problems == []


def test_pause_and_resume_a_running_batch_on_a_phone(page, live_server, owner, real_queue, tmp_path: Path):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/new/")
    page.fill("#id_prompts", "\n".join(f"山水畫 {n}" for n in range(40)))
    page.select_option("#id_size", "256x256")
    page.click("button:has-text('送出批次')")
    page.wait_for_url(re.compile(r"/batches/[0-9a-f-]{36}/$"))
    env = cluster_env(tmp_path, Q_WORKERS="2", LOCAL_PROVIDER_DELAY="0.5")
    with running_cluster(env, tmp_path / "cluster.log"):
        page.locator("#grid img").first.wait_for(timeout=60_000)
        expect(page.locator("#queue-note")).to_contain_text("正在產生中", timeout=15_000)
        page.click("#pause-form button")
        page.wait_for_selector("#batch-status [data-status=paused]", timeout=30_000)
        expect(page.locator("#queue-note")).to_contain_text("已暫停")
        expect(page.locator("#resume-form")).to_be_visible()
        expect(page.locator("#pause-form")).to_be_hidden()
        screenshot(page, "10-batch-paused-phone")
        page.click("#resume-form button")
        expect(page.locator("#queue-note")).to_contain_text("正在產生中", timeout=15_000)
        screenshot(page, "09-batch-running-phone")
        page.wait_for_selector("#batch-status [data-status=completed]", timeout=90_000)
    assert Batch.objects.get().completed == 40
