"""Rate limits: parsing, the API limit per user, login limits per username and IP, trusted proxies."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.urls import reverse

from accounts.audit import client_ip
from accounts.models import AuditEvent
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
