"""The monitoring dashboard in Chromium, with data from requests, renders and samples; saves screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from monitoring.request_metrics import recorder
from monitoring.services import system_sample_record

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def server_url() -> Any:
    """A threaded WSGI server with static files (the stock live_server cannot start while MEDIA_URL is None)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.handlers.wsgi import WSGIHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

    class Threaded(WSGIServer):
        def process_request(self, request: Any, client_address: Any) -> None:
            threading.Thread(target=super().process_request, args=(request, client_address), daemon=True).start()

    server = make_server("127.0.0.1", 0, StaticFilesHandler(WSGIHandler()), server_class=Threaded, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_see_charts_and_tables(browser: Any, server_url: str, staff: Any, make_batch: Any, settings: Any) -> None:
    settings.LANGUAGE_CODE = "zh-hant"
    make_batch(prompts=["a red fox", "一隻藍色的貓", "a lighthouse"], negative_prompt="blurry")
    client = Client()
    client.force_login(staff)
    for path in ("/health", "/batches/", "/api/v1/batches/", "/no-such-page", "/monitoring/"):
        client.get(path)
    recorder.flush(include_current=True)
    system_sample_record()
    page = browser.new_page(viewport={"width": 1300, "height": 1900})
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server_url}])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server_url}/monitoring/")
    page.wait_for_timeout(2000)
    page.wait_for_selector("#dashboard[data-loaded='true']", state="attached", timeout=10000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "monitoring-dashboard.png"), full_page=True)
    assert errors == []
    assert page.locator("#table-users tbody tr").first.inner_text().startswith("owner")
    assert page.locator("#tile-queued").inner_text() == "0"
    page.click("button[data-range='week']")
    page.wait_for_url("**range=week")
    page.wait_for_function("document.querySelector('#updated').textContent.length > 5")
    page.screenshot(path=str(ARTIFACTS / "monitoring-dashboard-week.png"), full_page=True)


def test_the_availability_card_shows_each_window_and_the_budget_left(
    browser: Any, server_url: str, staff: Any, settings: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.models import AvailabilitySample

    now = timezone.now()
    for minute in range(1000):  # 2 bad minutes in 1000: 99.8 %, 60 % of a 99.5 % budget left
        up = minute not in (10, 20)
        AvailabilitySample.objects.create(taken_at=now - timedelta(minutes=minute), seconds=60, up=up, web_ok=up)
    client = Client()
    client.force_login(staff)
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server_url}])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server_url}/monitoring/")
    page.wait_for_selector("#dashboard[data-loaded='true']", state="attached", timeout=10000)
    card = page.locator("section.availability")
    ARTIFACTS.mkdir(exist_ok=True)
    card.screenshot(path=str(ARTIFACTS / "monitoring-availability.png"))
    assert errors == []
    rows = [row.inner_text().split("\t") for row in page.locator("#table-availability tbody tr").all()]
    assert [row[0] for row in rows] == ["Last day", "Last 7 days", "Last 30 days"]  # Chromium asks for English
    assert rows[0][1:3] == ["99.8%", "60%"]
    assert "99.5%" in page.locator("#availability-target").inner_text()
    assert page.locator("#availability-latest").inner_text().endswith(": up.")
