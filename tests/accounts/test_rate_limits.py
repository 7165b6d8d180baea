"""Rate limits: parsing, the API limit per user, login limits per username and IP, trusted proxies."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import ratelimits
from accounts.audit import client_ip
from accounts.models import ApiToken, AuditEvent, RateLimitCounter
from accounts.ratelimits import Rate, parse_rate, rate_limit_hit, rate_limit_peek, rate_limit_refund
from tests.accounts.conftest import portal_login
from tests.conftest import PASSWORD


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("120/min", Rate(120, 60)),
        ("5/15min", Rate(5, 900)),
        ("10/30s", Rate(10, 30)),
        ("1000/day", Rate(1000, 86400)),
        (" 3 / hour ", Rate(3, 3600)),
    ],
)
def test_rates_are_parsed(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "120", "abc/min", "10/fortnight", "0/min", "5/0min"])
def test_bad_rates_are_a_configuration_error(text):
    with pytest.raises(ImproperlyConfigured):
        parse_rate(text)


def test_counter_counts_and_refunds(db, settings):
    settings.LOGIN_RATE_LIMIT = "2/min"
    assert rate_limit_hit(name="login_attempts", ident="k").count == 1
    assert rate_limit_hit(name="login_attempts", ident="k").allowed
    third = rate_limit_hit(name="login_attempts", ident="k")
    assert not third.allowed and 1 <= third.retry_after <= 60
    rate_limit_refund(name="login_attempts", ident="k")
    assert rate_limit_peek(name="login_attempts", ident="k").count == 2


def test_the_database_store_rolls_an_ended_window_over_and_sweeps_old_ones(db, settings):
    settings.REDIS_URL = ""
    settings.LOGIN_RATE_LIMIT = "2/min"
    for _ in range(3):
        rate_limit_hit(name="login_attempts", ident="k")
    now = timezone.now()
    RateLimitCounter.objects.update(window_start=now - timedelta(minutes=2), window_end=now - timedelta(minutes=1))
    stale = RateLimitCounter.objects.create(
        key="gone", window_start=now - timedelta(days=3), window_end=now - timedelta(days=2), count=9
    )
    hit = rate_limit_hit(name="login_attempts", ident="k")
    assert (hit.count, hit.allowed) == (1, True)
    assert 59 <= hit.retry_after <= 60
    assert not RateLimitCounter.objects.filter(pk=stale.pk).exists()
    assert rate_limit_hit(name="login_attempts", ident="k").count == 2


def test_api_requests_over_the_limit_get_429_with_retry_after(api, settings):
    settings.API_RATE_LIMIT = "3/min"
    statuses = [api.get("/api/v1/me/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api.get("/api/v1/batches/")
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["error"]["details"]["limit"] == "api_requests_per_minute"


def test_api_limit_is_per_user(api, other_api, settings):
    settings.API_RATE_LIMIT = "1/min"
    assert api.get("/api/v1/me/").status_code == 200
    assert api.get("/api/v1/me/").status_code == 429
    assert other_api.get("/api/v1/me/").status_code == 200


def test_api_responses_tell_the_remaining_budget(api, settings):
    settings.API_RATE_LIMIT = "10/min"
    response = api.get("/api/v1/me/")
    assert response["X-RateLimit-Limit"] == "10" and response["X-RateLimit-Remaining"] == "9"


def test_wrong_passwords_from_anywhere_cannot_lock_the_owner_out(anon_api, owner, settings):
    settings.LOGIN_RATE_LIMIT = "3/15min"
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = "3/15min"
    wrong = {"username": "owner", "password": "wrong"}
    statuses = [anon_api.post("/api/v1/auth/token/", wrong, REMOTE_ADDR=f"10.0.0.{i}").status_code for i in range(6)]
    assert statuses == [401] * 6  # each address is checked; the account is now slowed down
    right = anon_api.post("/api/v1/auth/token/", {"username": "owner", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9")
    assert right.status_code == 201


def test_a_slowed_account_makes_addresses_that_failed_on_it_wait(anon_api, owner, settings):
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = "3/15min"
    wrong = {"username": "owner", "password": "wrong"}
    for i in range(4):
        anon_api.post("/api/v1/auth/token/", wrong, REMOTE_ADDR=f"10.0.0.{i}")
    again = anon_api.post("/api/v1/auth/token/", wrong, REMOTE_ADDR="10.0.0.1")
    assert again.status_code == 429 and again.json()["error"]["code"] == "rate_limited"
    assert again["Retry-After"]
    assert AuditEvent.objects.filter(event="login.account_slowed", username="owner").count() == 1


def test_the_admin_account_cannot_be_locked_by_five_wrong_passwords(anon_api, staff, settings):
    for i in range(5):
        anon_api.post("/api/v1/auth/token/", {"username": "staff", "password": "x"}, REMOTE_ADDR=f"10.1.0.{i}")
    right = anon_api.post("/api/v1/auth/token/", {"username": "staff", "password": PASSWORD}, REMOTE_ADDR="10.2.0.1")
    assert right.status_code == 201


def test_login_is_limited_per_ip_across_usernames(client, db, settings):
    settings.LOGIN_RATE_LIMIT = "2/15min"
    statuses = [portal_login(client, f"user{i}", "wrong").status_code for i in range(3)]
    assert statuses == [200, 200, 429]
    assert "Too many requests" in portal_login(client, "user9", "wrong").content.decode()


def test_successful_logins_do_not_use_up_the_limit(client, owner, settings):
    settings.LOGIN_RATE_LIMIT = "2/15min"
    for _ in range(4):
        assert portal_login(client, "owner").status_code == 302
        client.post(reverse("accounts:logout"))


def test_a_forged_forwarded_for_header_does_not_dodge_the_limit(anon_api, db, settings):
    settings.LOGIN_RATE_LIMIT = "2/15min"
    statuses = [
        anon_api.post(
            "/api/v1/auth/token/",
            {"username": f"user{i}", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_client_ip_ignores_forwarded_for_from_an_untrusted_peer(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(request) == "198.51.100.7"


def test_client_ip_reads_forwarded_for_behind_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    # The client wrote 1.2.3.4 itself; the proxy appended the real peer 198.51.100.7.
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7")
    assert client_ip(request) == "198.51.100.7"


def test_client_ip_walks_past_a_chain_of_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.168.1.5"]
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7, 192.168.1.5"
    )
    assert client_ip(request) == "198.51.100.7"


def test_client_ip_stops_at_garbage_in_the_header(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_ip(request) == "10.0.0.1"


def test_trusted_proxy_setting_makes_limits_follow_the_real_client(anon_api, db, settings):
    settings.LOGIN_RATE_LIMIT = "1/15min"
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    first = anon_api.post(
        "/api/v1/auth/token/", {"username": "a", "password": "x"}, HTTP_X_FORWARDED_FOR="198.51.100.1"
    )
    second = anon_api.post(
        "/api/v1/auth/token/", {"username": "b", "password": "x"}, HTTP_X_FORWARDED_FOR="198.51.100.2"
    )
    assert (first.status_code, second.status_code) == (401, 401)


# --- When the store that counts is down: reads go through (logged), writes get a clear 503. ---


@pytest.fixture
def fresh_store_log(monkeypatch):
    """Each test starts with no store outage reported yet in this process."""
    log = ratelimits._StoreDownLog()
    monkeypatch.setattr(ratelimits, "_store_down_log", log)
    return log


@pytest.fixture
def redis_down(settings, fresh_store_log):
    """Point the rate limits at a Redis port where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def database_full(settings, monkeypatch, fresh_store_log):
    """The database store fails the way SQLite does on a full disk."""

    def full(*args, **kwargs):
        raise OperationalError("database or disk is full")

    settings.REDIS_URL = ""
    monkeypatch.setattr(ratelimits, "_db_hit", full)
    monkeypatch.setattr(ratelimits, "_peek", full)


def store_warnings(caplog):
    return [r for r in caplog.records if r.name == "accounts.ratelimits" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("store_down", ["redis_down", "database_full"])
def test_reads_go_through_uncounted_when_the_store_is_down(api, store_down, request, caplog):
    request.getfixturevalue(store_down)
    for path in ("/api/v1/batches/", "/api/v1/me/", "/api/v1/batches/"):
        response = api.get(path)
        assert response.status_code == 200, response.content
        assert "X-RateLimit-Limit" not in response
    assert api.options("/api/v1/batches/").status_code == 200
    assert api.get("/api/v1/me/").json()["rate_limits"]["api_requests_per_minute"]["used"] == 0
    warnings = store_warnings(caplog)
    assert len(warnings) == 1, "one warning for the outage, not one per request"
    assert "let through uncounted" in warnings[0].getMessage()


@pytest.mark.parametrize("store_down", ["redis_down", "database_full"])
def test_writes_are_refused_with_503_when_the_store_is_down(api, store_down, request):
    request.getfixturevalue(store_down)
    response = api.post("/api/v1/batches/", {"prompts": ["a red fox"]}, format="json")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "rate_limit_unavailable"
    assert "reading still works" in error["message"]
    assert error["details"] == {"limit": "api_requests_per_minute"}
    assert response["Retry-After"] == "30"
    assert error["request_id"] == response["X-Request-ID"]


def test_the_outage_report_counts_what_went_through_since_the_last_one(api, redis_down, fresh_store_log, caplog):
    api.get("/api/v1/batches/")
    api.get("/api/v1/batches/")
    api.delete("/api/v1/batches/00000000-0000-0000-0000-000000000000/")
    assert len(store_warnings(caplog)) == 1
    fresh_store_log.logged_at -= ratelimits.STORE_DOWN_LOG_SECONDS + 1  # a minute later
    api.get("/api/v1/batches/")
    later = store_warnings(caplog)[-1]
    assert len(store_warnings(caplog)) == 2
    assert "2 read-only request(s) let through uncounted, 1 refused" in later.getMessage()


def test_logins_are_refused_while_the_store_is_down(client, owner, database_full):
    response = portal_login(client, "owner")
    assert response.status_code == 503
    assert "Requests cannot be counted right now" in response.content.decode()
    token = APIClient().post("/api/v1/auth/token/", {"username": "owner", "password": PASSWORD})
    assert token.status_code == 503 and token.json()["error"]["code"] == "rate_limit_unavailable"


def test_counting_resumes_when_the_store_is_back(api, settings, fresh_store_log):
    settings.API_RATE_LIMIT = "10/min"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    real = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{closed}/0"
    assert "X-RateLimit-Remaining" not in api.get("/api/v1/me/")
    settings.REDIS_URL = real
    assert api.get("/api/v1/me/")["X-RateLimit-Remaining"] == "9"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query_only pragma makes the database refuse writes")
def test_reads_work_on_a_database_that_takes_no_writes(api, settings, fresh_store_log):
    """No fakes: every write fails as on a full disk (rate-limit counter, token last-used time)."""
    settings.REDIS_URL = ""
    ApiToken.objects.update(last_used_at=None)  # the next request would note the token's use
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA query_only = ON")
    try:
        read = api.get("/api/v1/batches/")
        write = api.post("/api/v1/batches/", {"prompts": ["a red fox"]}, format="json")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA query_only = OFF")
    assert read.status_code == 200, read.content
    assert write.status_code == 503 and write.json()["error"]["code"] == "rate_limit_unavailable"


def test_password_reset_is_refused_with_a_form_error_while_the_store_is_down(client, owner, database_full):
    response = client.post(reverse("accounts:password_reset"), {"email": owner.email or "owner@example.com"})
    assert response.status_code == 503
    assert "Requests cannot be counted right now" in response.content.decode()
    assert mail.outbox == []


def test_the_portal_session_has_its_own_limit_apart_from_token_clients(client, owner, api, settings):
    """A person watching a batch in the portal never throttles themselves, nor a script's token budget."""
    settings.API_RATE_LIMIT = "2/min"
    settings.PORTAL_RATE_LIMIT = "5/min"
    client.force_login(owner)
    portal = [client.get("/api/v1/batches/").status_code for _ in range(5)]
    assert portal == [200] * 5, "the portal's calls are counted against the portal limit"
    assert [api.get("/api/v1/batches/").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/api/v1/batches/").status_code == 429  # the portal has its own (here tiny) limit
