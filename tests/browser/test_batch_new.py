"""New batch in a real browser: drop a CSV, see its preview and the estimate, queue it; re-run a batch."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from generation.models import Batch
from tests.browser.conftest import screenshot
from tests.browser.test_portal import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV = "prompt,seed,style\n一隻{style}的貓,7,藍色\na {style} fox,,red\nforest at night,,\n"


def drop_file(page, name: str, text: str) -> None:
    """Drop a file on the drop zone as a user dragging it from the desktop would."""
    page.evaluate(
        """([name, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type: "text/csv" }));
            const zone = document.getElementById("drop-zone");
            zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
        }""",
        [name, text],
    )


def fits(page, selector: str, width: int) -> bool:
    return page.locator(selector).evaluate(f"el => el.getBoundingClientRect().right <= {width} + 1")


@pytest.mark.parametrize("width", [1280, 390])
def test_drop_a_csv_preview_it_see_the_estimate_and_queue_it(page, live_server, owner, width: int) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/new/")
    drop_file(page, "rows.csv", CSV)
    expect(page.locator("#file-count")).to_contain_text("3")
    expect(page.locator("#file-table tbody tr")).to_have_count(3)
    expect(page.locator("#file-table tbody")).to_contain_text("一隻藍色的貓")
    expect(page.locator("#estimate-text")).to_contain_text("3 個提示詞 → 3 張圖片", timeout=10_000)
    expect(page.locator("#estimate-text")).to_contain_text("US$0.0000")
    assert fits(page, "#file-preview", width) and fits(page, "#estimate", width)
    screenshot(page, f"batch-new-import-{width}")
    page.click("button:has-text('送出批次')")
    page.wait_for_url(re.compile(r"/batches/[0-9a-f-]{36}/$"))
    batch = Batch.objects.get()
    prompts = list(batch.generations.order_by("position").values_list("prompt", flat=True))
    assert prompts == ["一隻藍色的貓", "a red fox", "forest at night"]
    assert errors == []


def test_a_wildcard_typo_is_explained_before_submitting(page, live_server, owner) -> None:
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/new/")
    page.check("#id_template")
    page.fill("#id_prompts", "a __colours__ cat")
    expect(page.locator("#estimate-error")).to_contain_text("__colours__", timeout=10_000)


@pytest.mark.parametrize("width", [1280, 390])
def test_use_these_settings_prefills_new_batch(page, live_server, owner, make_batch, width: int) -> None:
    batch = make_batch(prompts=["a {red|blue} cat"], template=True, seed=42, run=False)
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    screenshot(page, f"batch-detail-actions-{width}")
    assert fits(page, "#download-link", width) and fits(page, "#rerun-link", width)
    page.click("#rerun-link")
    expect(page.locator("#id_prompts")).to_have_value("a {red|blue} cat")
    expect(page.locator("#id_template")).to_be_checked()
    expect(page.locator("#id_seed")).to_have_value("42")
    expect(page.locator("#estimate-text")).to_contain_text("2 個提示詞", timeout=10_000)
    screenshot(page, f"batch-new-rerun-{width}")
