"""The outgoing HTTP chokepoint: timeouts, SSRF guard and Retry-After parsing."""

from __future__ import annotations

import time

import httpx
import pytest

from imagegen.http import OutboundError, budget, request, retry_after_seconds
from tests.fakeserver import Reply, fake_server, trickling_server


def test_trusted_request_returns_the_response_whatever_its_status():
    with fake_server() as server:
        server.route("GET", "/missing", Reply(503, {"error": "busy"}))
        response = request("GET", f"{server.url}/missing", trusted=True)
    assert response.status_code == 503
    assert response.json() == {"error": "busy"}
    assert server.requests[0].headers["User-Agent"].startswith("ImageGen/")


def test_untrusted_request_to_loopback_is_blocked():
    with pytest.raises(OutboundError) as caught:
        request("GET", "http://127.0.0.1:9/secret")
    assert caught.value.kind == "blocked"
    assert not caught.value.retryable


def test_listed_private_host_is_allowed(settings):
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    with fake_server() as server:
        server.route("GET", "/ok", Reply(200, "fine"))
        assert request("GET", f"{server.url}/ok").text == "fine"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "http:///nohost"])
def test_non_http_urls_are_refused(url):
    with pytest.raises(OutboundError) as caught:
        request("GET", url)
    assert caught.value.kind == "invalid_url"


def test_a_slow_server_times_out_as_a_retryable_error():
    with fake_server() as server:
        server.route("GET", "/slow", Reply(200, "late", delay=2))
        with pytest.raises(OutboundError) as caught:
            request("GET", f"{server.url}/slow", trusted=True, timeout=0.3)
    assert caught.value.kind == "timeout"
    assert caught.value.retryable


def test_refused_connection_is_a_retryable_connection_error():
    with pytest.raises(OutboundError) as caught:
        request("GET", "http://127.0.0.1:1/", trusted=True, timeout=2)
    assert caught.value.kind == "connection"
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after_is_read_in_seconds_or_milliseconds(headers, expected):
    assert retry_after_seconds(httpx.Response(429, headers=headers)) == expected


def test_retry_after_as_http_date_is_seconds_from_now():
    response = httpx.Response(429, headers={"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert retry_after_seconds(response) > 3600


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::7f00:1",  # IPv4-compatible
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::808:808",  # NAT64 of a public address: refused all the same
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:7f00:1::1",  # 6to4
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_every_ipv6_form_that_wraps_ipv4_is_blocked(address, monkeypatch):
    import socket

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET6, 1, 6, "", (address, 80, 0, 0))])
    with pytest.raises(OutboundError) as caught:
        request("GET", "http://images.example.com/x.png")
    assert caught.value.kind == "blocked"


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch):
    """DNS rebinding: the name resolves once; a second, different answer is never used."""
    import socket

    from imagegen import http

    answers = iter(["127.0.0.1", "10.255.255.1"])
    lookups = []
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host[0].isdigit():  # an address, as the pinned connect passes it: no DNS involved
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, 1, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(http, "address_is_public", lambda address: True)  # let the fake server count as public
    with fake_server() as server:
        server.route("GET", "/x.png", Reply(200, "image"))
        port = server.url.rsplit(":", 1)[1]
        response = request("GET", f"http://rebind.example:{port}/x.png", timeout=5)
    assert (response.status_code, response.text) == (200, "image")
    assert lookups == ["rebind.example"]
    assert server.requests[0].headers["Host"] == f"rebind.example:{port}"


@pytest.mark.parametrize("read_body", [True, False])
def test_a_server_that_trickles_its_answer_is_cut_off_at_the_deadline(read_body):
    with trickling_server() as url:
        started = time.monotonic()
        with pytest.raises(OutboundError) as caught:
            request("POST", f"{url}/hook", trusted=True, timeout=0.5, deadline=1.0, read_body=read_body)
        took = time.monotonic() - started
    assert caught.value.kind == "timeout" and caught.value.retryable
    assert 0.9 < took < 3


def test_per_read_timeouts_never_stop_a_trickle_the_deadline_does():
    with trickling_server(pause=0.05) as url:
        started = time.monotonic()
        with pytest.raises(OutboundError):  # each byte comes within 0.5 s: only the deadline ends it
            request("GET", f"{url}/", trusted=True, timeout=0.5, deadline=1.5)
        assert time.monotonic() - started >= 1.4


def test_a_deadline_leaves_a_quick_answer_alone(settings):
    with fake_server() as server:
        server.route("GET", "/ok", Reply(200, "fine", delay=0.2))
        assert request("GET", f"{server.url}/ok", trusted=True, timeout=5, deadline=2).text == "fine"


def test_calls_in_a_budget_share_it_and_a_nested_budget_cannot_extend_it():
    with fake_server() as server:
        server.route("GET", "/slow", Reply(200, "late", delay=0.6))
        with budget(1.0):
            assert request("GET", f"{server.url}/slow", trusted=True, timeout=5).text == "late"
            with budget(30), pytest.raises(OutboundError) as caught:  # 0.4 s are left, not 30
                request("GET", f"{server.url}/slow", trusted=True, timeout=5)
        assert caught.value.kind == "timeout"
        assert request("GET", f"{server.url}/slow", trusted=True, timeout=5).text == "late"  # out of the block
