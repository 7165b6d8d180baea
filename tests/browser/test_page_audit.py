"""Every portal page at desktop and phone size, in both languages: no console errors, no CSP
violations, no horizontal overflow on a 390 px phone, no serious or critical axe-core findings.

Screenshots go to test-artifacts/audit/<page>-<size>-<lang>.png. To audit a new page, add one line
to PAGES: a name, who is logged in ("owner", "staff" or None) and a function from the seeded data
(`Seed`) to the page's path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections
from django.test import Client, override_settings
from django.urls import reverse

from generation import comparisons, library, services, tasks
from generation.comparisons import ArmRequest
from generation.models import Batch, BatchSource, Comparison
from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser]

AUDIT = ARTIFACTS / "audit"
SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
LANGUAGES = ["zh-hant", "en"]
SERIOUS = ("serious", "critical")
# Reports every CSP violation to the console, where the audit collects it with the errors.
SERVER_ERRORS: list[str] = []  # what Django logged as a request error while the audit ran


class _ServerErrors(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            SERVER_ERRORS.append(self.format(record)[-1500:])


CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.violatedDirective + " " + event.blockedURI);
});
"""


@dataclass
class Seed:
    """What the pages are about: one finished batch, one still waiting, one image."""

    finished: Batch
    running: Batch
    image_id: str
    comparison_id: str = ""
    collection_id: str = ""
    sessions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditPage:
    name: str
    user: str | None
    path: Callable[[Seed], str]
    status: int = 200


PAGES = [
    AuditPage("history", "owner", lambda seed: reverse("generation:batch_list")),
    AuditPage("new-batch", "owner", lambda seed: reverse("generation:batch_new")),
    AuditPage("batch-running", "owner", lambda seed: reverse("generation:batch_detail", args=[seed.running.pk])),
    AuditPage("batch-finished", "owner", lambda seed: reverse("generation:batch_detail", args=[seed.finished.pk])),
    AuditPage("image", "owner", lambda seed: reverse("generation:generation_detail", args=[seed.image_id])),
    AuditPage("provider-keys", "owner", lambda seed: reverse("generation:provider_keys")),
    AuditPage("account", "owner", lambda seed: reverse("accounts:profile")),
    AuditPage("tokens", "owner", lambda seed: reverse("accounts:tokens")),
    AuditPage("two-factor", "owner", lambda seed: reverse("accounts:two_factor")),
    AuditPage("two-factor-setup", "owner", lambda seed: reverse("accounts:two_factor_setup")),
    AuditPage("password-change", "owner", lambda seed: reverse("accounts:password_change")),
    AuditPage("not-found", "owner", lambda seed: "/no-such-page/", status=404),
    AuditPage("login", None, lambda seed: reverse("accounts:login")),
    AuditPage("password-reset", None, lambda seed: reverse("accounts:password_reset")),
    AuditPage("password-reset-sent", None, lambda seed: reverse("accounts:password_reset_done")),
    AuditPage("history-staff", "staff", lambda seed: reverse("generation:batch_list")),
    AuditPage("monitoring", "staff", lambda seed: reverse("monitoring_dashboard")),
    AuditPage("new-user", "staff", lambda seed: reverse("accounts:user_new")),
    AuditPage("library", "owner", lambda seed: reverse("generation:library")),
    AuditPage("collections", "owner", lambda seed: reverse("generation:collection_list")),
    AuditPage("collection", "owner", lambda seed: reverse("generation:collection_detail", args=[seed.collection_id])),
    AuditPage("comparisons", "owner", lambda seed: reverse("comparisons:comparison_list")),
    AuditPage("new-comparison", "owner", lambda seed: reverse("comparisons:comparison_new")),
    AuditPage("comparison", "owner", lambda seed: reverse("comparisons:comparison_detail", args=[seed.comparison_id])),
]


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit-media")


@pytest.fixture(autouse=True)
def shared_media(settings: Any, media_root: Path) -> None:
    settings.MEDIA_ROOT = str(media_root)  # the seeded images outlive each test's own media folder
    settings.LANGUAGE_FROM_BROWSER = False


def _batch(owner: User, prompts: list[str], name: str) -> Batch:
    spec = services.check_batch_request(name=name, prompts=prompts, width=256, height=256, images_per_prompt=2)
    return services.batch_create(owner=owner, spec=spec, source=BatchSource.PORTAL)


def _comparison(owner: User) -> Comparison:
    arms = [ArmRequest(provider="local", width=256, height=256), ArmRequest(provider="local", width=512, height=512)]
    spec = comparisons.check_comparison_request(
        name="比較 A/B", prompts=["a red fox", "一隻藍色的貓 🐱"], arms=arms, user_id=owner.pk
    )
    return comparisons.comparison_create(owner=owner, spec=spec, source=BatchSource.PORTAL)


def _session(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture(scope="module")
def seed(django_db_setup: Any, django_db_blocker: Any, media_root: Path) -> Iterator[Seed]:
    """Seeded once for the whole module (committed, so the server thread sees it), flushed at the end."""
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=str(media_root)):
        owner = User.objects.create_user("owner", password=PASSWORD)
        staff = User.objects.create_user("staff", password=PASSWORD, is_staff=True, is_superuser=True)
        finished = _batch(
            owner, ["紅色夕陽下的海邊 🌅", "a lighthouse in a storm, oil painting", "山水畫"], "夕陽與燈塔"
        )
        comparison = _comparison(owner)  # before the waiting batch: its dispatch would run that one too
        with mock.patch.object(tasks, "dispatch_now", lambda: None):  # nobody runs it: it stays queued
            running = _batch(owner, [f"一隻藍色的貓 {i}" for i in range(6)], "Cats in blue, a very long batch name")
        finished.refresh_from_db()
        seed = Seed(finished=finished, running=running, image_id=str(finished.generations.order_by("position")[0].pk))
        seed.comparison_id = str(comparison.pk)
        collection = library.collection_create(owner=owner, name="我的最愛 Favourites")
        library.collection_items_add(collection=collection, generations=list(finished.generations.all()[:4]))
        library.generation_favourite_set(generation=finished.generations.all()[0], favourite=True)
        seed.collection_id = str(collection.pk)
        seed.sessions = {"owner": _session(owner), "staff": _session(staff)}
        yield seed
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def server_url(seed: Seed, django_db_blocker: Any) -> Iterator[str]:
    """A threaded WSGI server with static files, in this process (it shares the test database)."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.handlers.wsgi import WSGIHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

    class Threaded(WSGIServer):
        def process_request(self, request: Any, client_address: Any) -> None:
            threading.Thread(target=self._serve, args=(request, client_address), daemon=True).start()

        def _serve(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request(request, client_address)
            finally:
                connections.close_all()  # or the test database cannot be dropped at the end

    handler = _ServerErrors()
    logging.getLogger("django.request").addHandler(handler)
    with django_db_blocker.unblock():
        server = make_server(
            "127.0.0.1", 0, StaticFilesHandler(WSGIHandler()), server_class=Threaded, handler_class=Quiet
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()
        server.server_close()
    logging.getLogger("django.request").removeHandler(handler)


@pytest.fixture(scope="module")
def contexts(browser: Any, seed: Seed, server_url: str) -> Iterator[Callable[..., Any]]:
    """One browser context per (user, size, language, colour scheme), reused by every page of it."""
    opened: dict[tuple[str | None, str, str, str], Any] = {}
    AUDIT.mkdir(parents=True, exist_ok=True)

    def context_for(user: str | None, size: str, language: str, scheme: str = "light") -> Any:
        key = (user, size, language, scheme)
        if key not in opened:
            context = browser.new_context(
                viewport=SIZES[size], locale="en-US", color_scheme=scheme, device_scale_factor=1
            )
            cookies = [{"name": "django_language", "value": language, "url": server_url}]
            if user:
                cookies.append({"name": "sessionid", "value": seed.sessions[user], "url": server_url})
            context.add_cookies(cookies)
            context.add_init_script(CSP_LISTENER)
            opened[key] = context
        return opened[key]

    yield context_for
    for context in opened.values():
        context.close()


def audit(context: Any, url: str, shot: Path, status: int = 200) -> list[str]:
    """Open the page and list what is wrong with it; saves a full-page screenshot."""
    from axe_playwright_python.sync_playwright import Axe

    page = context.new_page()
    problems: list[str] = []
    SERVER_ERRORS.clear()
    expected = f"the server responded with a status of {status}"  # Chromium logs a 404 page's own status

    def on_console(message: Any) -> None:
        if message.type == "error" and not (status != 200 and expected in message.text):
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        response = page.goto(url, wait_until="networkidle" if "/monitoring/" in url else "load")
        if response is None or response.status != status:
            problems.append(f"HTTP {response.status if response else 'no response'}, expected {status}")
        page.wait_for_timeout(150)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        viewport = page.viewport_size["width"]
        if width > viewport:
            problems.append(f"horizontal overflow: {width} px wide in a {viewport} px window")
        results = Axe().run(page)
        for violation in results.response["violations"]:
            if violation["impact"] in SERIOUS:
                targets = [", ".join(node["target"]) for node in violation["nodes"]][:5]
                problems.append(f"axe {violation['impact']} {violation['id']}: {violation['help']} at {targets}")
        page.screenshot(path=str(shot), full_page=True)
        problems.extend(f"server: {error}" for error in SERVER_ERRORS)
    finally:
        page.close()
    return problems


# The data is seeded (committed) once per module, because the server thread only sees what is
# committed; the audits themselves hold no transaction, which on SQLite would take the write lock
# from the server. This first test carries the marker that makes pytest-django create the test
# database: keep it in any -k selection of this module.
@pytest.mark.django_db
def test_audit_seed_has_a_finished_and_a_waiting_batch(seed: Seed) -> None:
    statuses = dict(Batch.objects.filter(pk__in=[seed.finished.pk, seed.running.pk]).values_list("pk", "status"))
    assert statuses == {seed.finished.pk: "completed", seed.running.pk: "queued"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("audited", PAGES, ids=lambda audited: audited.name)
def test_page_passes_the_audit(audited: AuditPage, size: str, language: str, contexts, seed, server_url) -> None:
    context = contexts(audited.user, size, language)
    shot = AUDIT / f"{audited.name}-{size}-{language}.png"
    problems = audit(context, server_url + audited.path(seed), shot, audited.status)
    assert not problems, "\n".join(problems)


DARK_SAMPLE = [
    "history", "batch-finished", "batch-running", "new-batch", "image", "login", "monitoring", "account", "tokens",
    "two-factor-setup", "new-user", "comparison", "library", "collection",
]  # fmt: skip


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", DARK_SAMPLE)
def test_page_passes_the_audit_in_dark_mode(name: str, size: str, contexts, seed, server_url) -> None:
    audited = next(page for page in PAGES if page.name == name)
    language = "zh-hant" if size == "phone" else "en"
    context = contexts(audited.user, size, language, "dark")
    shot = AUDIT / f"{audited.name}-{size}-{language}-dark.png"
    problems = audit(context, server_url + audited.path(seed), shot, audited.status)
    assert not problems, "\n".join(problems)


# --- Behaviour of the shell and of the live batch page (same seeded data, same server) ---


def _open(contexts: Any, server_url: str, path: str, size: str = "desktop", language: str = "en") -> Any:
    page = contexts("owner", size, language).new_page()
    page.set_default_timeout(10_000)
    page.goto(server_url + path)
    return page


def test_keyboard_shortcuts_and_skip_link(contexts, seed, server_url) -> None:
    page = _open(contexts, server_url, reverse("generation:batch_list"))
    try:
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        page.keyboard.press("?")
        assert page.locator("#shortcuts-help").evaluate("dialog => dialog.open")
        page.screenshot(path=str(AUDIT / "shortcuts-help-desktop-en.png"))
        page.keyboard.press("Escape")
        assert not page.locator("#shortcuts-help").evaluate("dialog => dialog.open")
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.type") == "search"
        page.keyboard.type("n?")  # typed into the search box, not taken as shortcuts
        assert page.locator("input[type=search]").input_value() == "n?"
        assert not page.locator("#shortcuts-help").evaluate("dialog => dialog.open")
        page.keyboard.press("Control+Enter")  # submits the search form it is typing in
        page.wait_for_url("**q=n%3F**")
        page.locator("main h1").click()
        page.keyboard.press("n")
        page.wait_for_url("**" + reverse("generation:batch_new"))
    finally:
        page.close()


def test_the_phone_menu_opens_and_the_theme_is_remembered(contexts, seed, server_url) -> None:
    page = _open(contexts, server_url, reverse("generation:batch_list"), size="phone")
    try:
        assert not page.locator(".mainnav").is_visible()
        page.click("#menu-button")
        assert page.get_attribute("#menu-button", "aria-expanded") == "true"
        assert page.locator(".mainnav a", has_text="API tokens").is_visible()
        page.screenshot(path=str(AUDIT / "menu-open-phone-en.png"))
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
        page.select_option("#theme-switch", "dark")
        page.reload()
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 19, 26)"
        assert page.get_attribute("#menu-button", "aria-expanded") == "false"  # a new page starts closed
        page.click("#menu-button")
        page.select_option("#theme-switch", "auto")
        assert page.evaluate("document.documentElement.dataset.theme") is None
    finally:
        page.close()


def test_the_batch_page_shows_progress_in_the_title_and_backs_off_on_429(contexts, seed, server_url) -> None:
    calls: list[float] = []

    def too_many(route: Any) -> None:
        calls.append(time.monotonic())
        route.fulfill(status=429, headers={"Retry-After": "3"}, content_type="application/json", body="{}")

    page = contexts("owner", "desktop", "zh-hant").new_page()
    try:
        page.route(f"**/api/v1/batches/{seed.running.pk}/", too_many)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server_url + reverse("generation:batch_detail", args=[seed.running.pk]))
        assert errors == []
        assert page.title().startswith("(0%) ")
        page.locator("#live-message").wait_for(state="visible", timeout=5_000)
        assert "3 秒後再更新" in page.locator("#live-message").inner_text()
        page.wait_for_timeout(3_500)
        assert len(calls) == 2, "the second poll waited for Retry-After"
        assert calls[1] - calls[0] >= 2.9
        page.unroute(f"**/api/v1/batches/{seed.running.pk}/")
        page.locator("#live-message").wait_for(state="hidden", timeout=6_000)
        assert page.locator("#notify-toggle").inner_text() == "批次結束時通知我"
    finally:
        page.close()
