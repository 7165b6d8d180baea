"""A/B comparisons in a real browser: create in the portal, watch it fill in, vote, read the summary.

The queue is synchronous here (Q_SYNC): a comparison made in the portal renders within the request
with the offline `local` provider, and one made by the test starts rendering when the test dispatches.
"""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from generation import comparisons, tasks
from generation.comparisons import ArmRequest
from generation.models import Comparison, ComparisonVote
from tests.browser.conftest import ARTIFACTS, screenshot, switch_language
from tests.browser.test_portal import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DETAIL = re.compile(r"/comparisons/[0-9a-f-]{36}/(#.*)?$")


def watch_for_errors(page) -> list[str]:
    """Console errors, uncaught exceptions and CSP violations (reported as console errors) of the page."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    return problems


def accessibility_problems(page) -> list[str]:
    """Serious and critical axe-core findings on the page as it is now (the shared footer is base.html's)."""
    results = Axe().run(page, context={"exclude": [[".footer"]]})
    return [
        f"{page.url}: {v['id']} ({v['impact']}) {[n['html'][:120] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def no_horizontal_overflow(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_create_vote_and_read_the_summary(page, live_server, owner):
    problems = watch_for_errors(page)
    log_in(page, live_server.url)
    page.click("nav.mainnav >> text=比較")
    expect(page.locator("h1")).to_have_text("A/B 比較")
    page.click("text=新增比較 >> nth=0")

    page.fill("#id_prompts", "紅色夕陽下的海邊 🌅\nforest at night")
    page.fill("#id_name", "尺寸比較")
    page.select_option("#id_arm0_size", "256x256")
    page.select_option("#id_arm1_size", "512x512")
    assert not page.locator("#arm-2").is_visible()
    page.click("#add-arm")
    expect(page.locator("#arm-2")).to_be_visible()
    page.click("#arm-2 .cmp-remove")  # changed our mind: back to two configurations
    expect(page.locator("#arm-2")).to_be_hidden()
    screenshot(page, "cmp-01-new-comparison")
    page.click("button:has-text('開始比較')")
    page.wait_for_url(DETAIL)

    comparison = Comparison.objects.get()
    assert comparison.arms.count() == 2
    expect(page.locator(".cmp-cell img")).to_have_count(4)
    screenshot(page, "cmp-02-side-by-side")

    page.click("#prompt-1 button:has-text('A 較好')")
    page.wait_for_url(DETAIL)
    expect(page.locator("#prompt-1 button[value='0']")).to_have_attribute("aria-pressed", "true")
    # Keyboard only: Tab to the tie button of prompt 2 and press Enter.
    page.focus("#prompt-2 button[value='1']")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(DETAIL)
    expect(page.locator("#prompt-2 button[value=tie]")).to_have_attribute("aria-pressed", "true")
    assert ComparisonVote.objects.count() == 2

    rows = page.locator("#summary-table tbody tr")
    expect(rows.nth(0).locator("td").nth(0)).to_contain_text("75%")  # a win and a tie of 2 votes
    expect(rows.nth(1).locator("td").nth(0)).to_contain_text("25%")
    expect(rows.nth(0).locator("td").nth(5)).to_have_text("2/2")
    screenshot(page, "cmp-03-voted-summary")

    page.click("#prompt-1 button[value='1']")  # a vote can be changed
    page.wait_for_url(DETAIL)
    expect(page.locator("#prompt-1 button[value='1']")).to_have_attribute("aria-pressed", "true")

    with page.expect_popup() as popup:
        page.locator("#cell-0-0 a").click()
    assert popup.value.evaluate("() => document.images[0].naturalWidth") == 256

    switch_language(page, "en")
    expect(page.locator("#prompt-1 button[value='0']")).to_have_text("A is better")
    screenshot(page, "cmp-04-side-by-side-english")
    assert accessibility_problems(page) == []
    assert problems == []


def test_live_progress_and_phone_layout_in_both_languages(page, live_server, owner, monkeypatch):
    spec = comparisons.check_comparison_request(
        name="Phones",
        prompts=["a red fox", "一隻藍色的貓 🐱", "山水畫"],
        arms=[
            ArmRequest(provider="local", width=256, height=256),
            ArmRequest(provider="local", width=512, height=512, label="big"),
            ArmRequest(provider="local", width=768, height=768),
        ],
        user_id=owner.pk,
    )
    with monkeypatch.context() as patch:
        patch.setattr(tasks, "dispatch_now", lambda: None)  # not rendered yet: nothing dispatched
        comparison = comparisons.comparison_create(owner=owner, spec=spec)
    problems = watch_for_errors(page)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/comparisons/{comparison.pk}/")
    expect(page.locator(".cmp-cell img")).to_have_count(0)
    assert page.locator("#prompt-1 button[value=tie]").is_disabled()
    screenshot(page, "cmp-05-waiting-phone")

    tasks.dispatch_now()  # the synchronous queue renders every image now; the page finds out by polling
    expect(page.locator(".cmp-cell img")).to_have_count(9, timeout=20_000)
    expect(page.locator("#prompt-1 button[value=tie]")).to_be_enabled()
    expect(page.locator("#cmp-status .status")).to_have_text("已結束")
    expect(page.locator("#sum-1-images")).to_have_text("3/3")
    # Stacked on a phone: every image as wide as the row, none beside another.
    boxes = [page.locator(f"#cell-0-{arm}").bounding_box() for arm in range(3)]
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"] and boxes[0]["x"] == boxes[1]["x"]
    assert no_horizontal_overflow(page)
    screenshot(page, "cmp-06-finished-phone")

    findings = accessibility_problems(page)
    for path in ("/comparisons/", "/comparisons/new/"):
        page.goto(f"{live_server.url}{path}")
        assert no_horizontal_overflow(page), path
        findings += accessibility_problems(page)
    assert findings == [], "\n".join(findings)
    switch_language(page, "en")
    for path in ("/comparisons/", "/comparisons/new/", f"/comparisons/{comparison.pk}/"):
        page.goto(f"{live_server.url}{path}")
        assert no_horizontal_overflow(page), path
    expect(page.locator("h2#summary-title")).to_have_text("Summary")
    screenshot(page, "cmp-07-finished-phone-english")
    assert problems == []


def test_staff_see_the_comparison_table_on_the_dashboard(page, live_server, owner, staff):
    problems = watch_for_errors(page)
    spec = comparisons.check_comparison_request(
        prompts=["a red fox", "山水畫"],
        arms=[ArmRequest(provider="local", width=256, height=256), ArmRequest(provider="local", width=512, height=512)],
        user_id=owner.pk,
    )
    comparison = comparisons.comparison_get(
        user=owner, comparison_id=comparisons.comparison_create(owner=owner, spec=spec).pk
    )
    comparisons.comparison_vote(comparison=comparison, prompt_index=0, winner=1)
    comparisons.comparison_vote(comparison=comparison, prompt_index=1, winner=1)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.goto(f"{live_server.url}/monitoring/")
    rows = page.locator("#table-comparisons tbody tr")
    expect(rows).to_have_count(2)
    large = page.locator("#table-comparisons tbody tr", has_text="512x512")
    expect(large).to_contain_text("100%")  # 2 wins of 2 votes
    expect(large).to_contain_text("34–100%")  # its Wilson interval
    screenshot(page, "cmp-08-dashboard")
    page.locator("#table-comparisons").screenshot(path=str(ARTIFACTS / "cmp-09-dashboard-table.png"))
    assert problems == []
