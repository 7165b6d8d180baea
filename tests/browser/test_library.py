"""The library in a real browser: grid, CJK search, star, the lightbox's keys, delete with a confirm step."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from generation.models import Batch, Generation
from tests.browser.conftest import screenshot, switch_language
from tests.browser.test_portal import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROMPTS = ["一隻藍色的貓", "a red fox in the snow", "forest at night"]


def _serious_axe_violations(page, context: str | None = None) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context)
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _watch_console(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def test_library_grid_search_star_viewer_and_delete(page, live_server, owner, make_batch):
    make_batch(name="貓與狐狸", prompts=PROMPTS, width=256, height=256)
    problems = _watch_console(page)
    log_in(page, live_server.url)
    page.click("nav.mainnav >> text=圖庫")
    expect(page.locator("#grid .tile")).to_have_count(3)
    page.wait_for_function("() => [...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth)")
    screenshot(page, "library-01-grid-1280")
    assert _serious_axe_violations(page, "main") == []

    page.fill("input[name=q]", "貓")
    page.press("input[name=q]", "Enter")
    expect(page.locator("#grid .tile")).to_have_count(1)
    assert page.locator("#grid .tile").get_attribute("data-prompt") == "一隻藍色的貓"
    page.click("text=清除")
    expect(page.locator("#grid .tile")).to_have_count(3)

    first = page.locator("#grid .tile").first
    first.locator(".star").click()
    expect(first).to_have_attribute("data-favourite", "true")
    assert Generation.objects.filter(favourite=True).count() == 1

    first.locator(".tile-open").click()
    dialog = page.locator("#lightbox")
    expect(dialog).to_be_visible()
    assert dialog.get_attribute("aria-modal") == "true"
    expect(page.locator(".lightbox-position")).to_contain_text("1")
    page.wait_for_function("() => document.querySelector('.lightbox-image').naturalWidth === 256")
    expect(page.locator(".lightbox-star")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "library-02-viewer-1280")
    assert _serious_axe_violations(page, "#lightbox") == []
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.click("[data-copy=prompt]")
    expect(page.locator(".lightbox-status")).not_to_be_empty()
    assert page.evaluate("() => navigator.clipboard.readText()") == "一隻藍色的貓"
    page.click("[data-copy=parameters]")
    page.wait_for_function("async () => (await navigator.clipboard.readText()).includes('\"seed\"')")
    page.keyboard.press("ArrowRight")
    expect(page.locator(".lightbox-prompt")).to_have_text(
        page.locator("#grid .tile").nth(1).get_attribute("data-prompt")
    )
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # wraps round to the last image
    expect(page.locator(".lightbox-prompt")).to_have_text(
        page.locator("#grid .tile").nth(2).get_attribute("data-prompt")
    )
    for _ in range(12):  # Tab never leaves the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.getElementById('lightbox').contains(document.activeElement)")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate("() => document.activeElement.classList.contains('tile-open')")

    doomed = page.locator("#grid .tile").nth(1).get_attribute("data-prompt")
    page.locator("#grid .tile").nth(1).locator(".tile-open").click()
    page.click(".lightbox-delete")
    page.wait_for_selector("#confirm-delete")
    screenshot(page, "library-03-confirm-delete")
    page.click("#confirm-delete")
    expect(page.locator("#grid .tile")).to_have_count(2)
    assert not Generation.objects.listed().filter(prompt=doomed).exists()
    assert problems == []


def test_library_on_a_phone(page, live_server, owner, make_batch):
    make_batch(name="phone", prompts=PROMPTS, width=256, height=256)
    problems = _watch_console(page)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/library/")
    expect(page.locator("#grid .tile")).to_have_count(3)
    for selector in (".library-filters", ".selection-bar", "#grid"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (selector, box)
    columns = page.evaluate(
        "() => getComputedStyle(document.getElementById('grid')).gridTemplateColumns.split(' ').length"
    )
    assert columns == 2
    page.locator("#grid .tile .pick").first.check()
    expect(page.locator(".selection-count")).to_contain_text("1")
    screenshot(page, "library-04-phone-390")
    page.locator("#grid .tile-open").first.click()
    expect(page.locator("#lightbox")).to_be_visible()
    for selector in (".lightbox-close", ".lightbox-next", ".lightbox-delete"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["height"] >= 40 and box["x"] + box["width"] <= 390, (selector, box)
    screenshot(page, "library-05-viewer-390")
    page.keyboard.press("Escape")
    switch_language(page, "en")
    expect(page.locator("h1")).to_have_text("Library")
    for selector in (".library-filters", ".selection-bar", "#grid"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390, (selector, box)
    screenshot(page, "library-07-phone-390-english")
    assert problems == []


def test_batch_page_viewer_history_thumbnails_and_deleting_a_batch(page, live_server, owner, make_batch):
    batch = make_batch(name="海邊", prompts=PROMPTS, width=256, height=256)
    problems = _watch_console(page)
    log_in(page, live_server.url)
    expect(page.locator(".history-strip img")).to_have_count(3)
    page.wait_for_function("() => [...document.querySelectorAll('.history-strip img')].every(i => i.naturalWidth)")
    screenshot(page, "library-06-history-thumbnails")

    page.click("text=海邊")
    page.locator("#grid .tile-open").nth(2).click()
    expect(page.locator("#lightbox")).to_be_visible()
    expect(page.locator(".lightbox-prompt")).to_have_text("forest at night")
    expect(page.locator(".lightbox-rerun")).to_have_attribute("href", re.compile(r"from_generation=[0-9a-f-]{36}$"))
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_be_hidden()

    page.click("#delete-batch")
    page.wait_for_selector("#confirm-delete")
    page.click("#confirm-delete")
    page.wait_for_url(re.compile(r"/batches/$"))
    assert Batch.objects.get(pk=batch.pk).deleted_at is not None
    expect(page.locator("table.batches")).to_have_count(0)
    assert problems == []


def test_load_more_appends_the_next_page_in_place(page, live_server, owner, make_batch, monkeypatch):
    from generation import views_library

    monkeypatch.setattr(views_library, "LIBRARY_PAGE_SIZE", 2)
    make_batch(name="many", prompts=[*PROMPTS, "山水畫", "海邊"], width=256, height=256)
    problems = _watch_console(page)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/library/")
    expect(page.locator("#grid .tile")).to_have_count(2)
    page.click("#load-more")
    expect(page.locator("#grid .tile")).to_have_count(4)
    page.click("#load-more")
    expect(page.locator("#grid .tile")).to_have_count(5)
    expect(page.locator("#load-more")).to_have_count(0)
    assert page.url.endswith("/batches/library/")  # no navigation: the tiles were added in place
    assert problems == []


def test_collections_from_the_selection_bar_on_a_phone(page, live_server, owner, make_batch):
    make_batch(name="collect", prompts=PROMPTS, width=256, height=256)
    problems = _watch_console(page)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/collections/")
    page.fill("#collection-name", "藍色的東西")
    page.click(".new-collection button[type=submit]")
    expect(page.locator("h1")).to_have_text("藍色的東西")
    screenshot(page, "library-08-collection-empty-390")
    page.goto(f"{live_server.url}/batches/library/")
    page.locator("#grid .tile .pick").nth(0).check()
    page.locator("#grid .tile .pick").nth(2).check()
    page.click("button[value=add]")
    expect(page.locator(".message.success")).to_contain_text("藍色的東西")
    page.goto(f"{live_server.url}/batches/collections/")
    page.click("text=藍色的東西")
    expect(page.locator("#grid .tile")).to_have_count(2)
    box = page.locator(".rename-form").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390, box
    screenshot(page, "library-09-collection-390")
    assert _serious_axe_violations(page, "main") == []
    assert problems == []


def test_the_viewer_goes_on_into_the_next_page_of_the_library(page, live_server, owner, make_batch, monkeypatch):
    from generation import views_library

    monkeypatch.setattr(views_library, "LIBRARY_PAGE_SIZE", 2)
    make_batch(name="pages", prompts=PROMPTS, width=256, height=256)
    problems = _watch_console(page)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/library/")
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(2)
    tiles.nth(1).locator(".tile-open").click()
    page.keyboard.press("ArrowRight")  # past the last loaded image: the next page is loaded
    expect(tiles).to_have_count(3)
    expect(page.locator(".lightbox-prompt")).to_have_text(tiles.nth(2).get_attribute("data-prompt"))
    expect(page.locator("#load-more")).to_have_count(0)
    page.locator(".lightbox-next").click()  # nothing more to load: round to the first
    expect(page.locator(".lightbox-prompt")).to_have_text(tiles.nth(0).get_attribute("data-prompt"))
    assert problems == []
