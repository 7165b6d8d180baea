"""Rate limits and quotas hold under real concurrency: parallel HTTP requests against a live server."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connections
from waitress.server import create_server

from accounts.services import token_create
from generation.models import Generation
from tests.conftest import PASSWORD

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    # One at a time: each test opens up to SERVER_THREADS database connections at once.
    pytest.mark.xdist_group("limits_under_concurrency"),
]
SERVER_THREADS = 16


@pytest.fixture
def waitress_server() -> Iterator[str]:
    """The app served by waitress, as in production, on a free port.

    Server threads close their database connection after each request, so the test never holds
    more connections than it has threads serving.
    """
    database = connections.settings["default"]
    kept_age = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    server = create_server(get_wsgi_application(), host="127.0.0.1", port=0, threads=SERVER_THREADS)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)
    database["CONN_MAX_AGE"] = kept_age


def fire(count: int, send) -> Counter:
    """Send `count` requests at once from `count` threads and tally the status codes."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return Counter(pool.map(lambda i: send(i).status_code, range(count)))


def test_fifty_parallel_api_requests_against_a_limit_of_twenty_let_exactly_twenty_through(
    waitress_server, owner, settings
):
    settings.API_RATE_LIMIT = "20/hour"
    headers = {"Authorization": f"Bearer {token_create(user=owner, name='load').secret}"}
    with httpx.Client(base_url=waitress_server, headers=headers, timeout=60) as client:
        tally = fire(50, lambda i: client.get("/api/v1/me/"))
    assert tally == Counter({200: 20, 429: 30})


def test_twenty_parallel_batches_never_pass_the_daily_quota(waitress_server, owner, settings):
    settings.DEFAULT_DAILY_IMAGE_QUOTA = 10
    settings.DEFAULT_MAX_ACTIVE_BATCHES = 100
    headers = {"Authorization": f"Bearer {token_create(user=owner, name='load').secret}"}
    body = {"prompts": ["a fox", "a cat", "a owl"]}
    with httpx.Client(base_url=waitress_server, headers=headers, timeout=120) as client:
        tally = fire(20, lambda i: client.post("/api/v1/batches/", json=body))
    assert tally == Counter({201: 3, 429: 17})
    assert Generation.objects.filter(batch__owner=owner).count() == 9


def test_parallel_password_guesses_get_exactly_the_allowed_attempts(waitress_server, owner, settings):
    settings.LOGIN_RATE_LIMIT = "5/15min"
    with httpx.Client(base_url=waitress_server, timeout=60) as client:
        tally = fire(
            20, lambda i: client.post("/api/v1/auth/token/", json={"username": "owner", "password": f"guess{i}"})
        )
    assert tally == Counter({401: 5, 429: 15})
    with httpx.Client(base_url=waitress_server, timeout=60) as client:
        right = client.post("/api/v1/auth/token/", json={"username": "owner", "password": PASSWORD})
    assert right.status_code == 429


def test_forged_forwarded_for_headers_share_one_limit(waitress_server, db, settings):
    settings.LOGIN_RATE_LIMIT = "5/15min"
    with httpx.Client(base_url=waitress_server, timeout=60) as client:
        tally = fire(
            20,
            lambda i: client.post(
                "/api/v1/auth/token/",
                json={"username": f"user{i}", "password": "x"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            ),
        )
    assert tally == Counter({401: 5, 429: 15})
