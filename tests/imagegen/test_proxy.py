"""imagegen.proxy: forwarding headers are believed from TRUSTED_PROXIES only."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from django.conf import settings

from imagegen.proxy import TrustedProxyMiddleware


def seen_by_app(trusted: list[str], **environ: str) -> dict[str, Any]:
    """The environ the wrapped application receives for a request with these CGI variables."""
    received: dict[str, Any] = {}

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        received.update(env)
        return []

    base = {"REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "HTTP_HOST": "127.0.0.1:5000"}
    TrustedProxyMiddleware(app, trusted)(base | environ, lambda *args: None)
    return received


FORGED = {
    "HTTP_X_FORWARDED_FOR": "203.0.113.9",
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_X_FORWARDED_HOST": "evil.example",
    "HTTP_FORWARDED": "for=203.0.113.9;proto=https",
}


def test_headers_from_an_untrusted_peer_are_removed():
    env = seen_by_app(["10.0.0.0/8"], REMOTE_ADDR="198.51.100.7", **FORGED)
    assert env["REMOTE_ADDR"] == "198.51.100.7"
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_HOST"] == "127.0.0.1:5000"
    assert not set(FORGED) & set(env)


def test_no_trusted_proxies_trusts_nobody_not_even_localhost():
    env = seen_by_app([], REMOTE_ADDR="127.0.0.1", **FORGED)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"
    assert not set(FORGED) & set(env)


def test_a_trusted_network_gives_the_client_address_scheme_and_host():
    env = seen_by_app(
        ["10.0.0.0/8"],
        REMOTE_ADDR="10.1.2.3",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="imagegen.example.com",
    )
    assert env["REMOTE_ADDR"] == "198.51.100.7"
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTP_X_FORWARDED_PROTO"] == "https"
    assert env["HTTP_HOST"] == "imagegen.example.com"


def test_addresses_the_client_wrote_itself_are_ignored():
    env = seen_by_app(["10.0.0.1"], REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7")
    assert env["REMOTE_ADDR"] == "198.51.100.7"


def test_a_chain_of_trusted_proxies_is_walked_past():
    env = seen_by_app(
        ["10.0.0.0/8", "192.168.1.5"], REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7, 192.168.1.5"
    )
    assert env["REMOTE_ADDR"] == "198.51.100.7"


def test_garbage_in_the_chain_stops_the_walk():
    env = seen_by_app(["10.0.0.1"], REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7, not-an-ip")
    assert env["REMOTE_ADDR"] == "10.0.0.1"


def test_ipv6_proxy_and_client():
    env = seen_by_app(["fd00::/8"], REMOTE_ADDR="fd00::1", HTTP_X_FORWARDED_FOR="2001:db8::7")
    assert env["REMOTE_ADDR"] == "2001:db8::7"


def test_the_nearest_proxy_decides_the_scheme_and_nonsense_is_dropped():
    assert seen_by_app(["127.0.0.1"], HTTP_X_FORWARDED_PROTO="https, http")["wsgi.url_scheme"] == "http"
    env = seen_by_app(["127.0.0.1"], HTTP_X_FORWARDED_PROTO="gopher")
    assert env["wsgi.url_scheme"] == "http"
    assert "HTTP_X_FORWARDED_PROTO" not in env


def settings_error(**variables: str) -> str:
    env = {k: v for k, v in os.environ.items() if "PYTEST" not in k} | {"DATA_DIR": str(settings.DATA_DIR)} | variables
    command = [sys.executable, "-c", "import imagegen.settings"]
    return subprocess.run(command, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True).stderr


def test_a_malformed_trusted_proxy_is_a_clear_start_up_error():
    assert "TRUSTED_PROXIES: 'proxy.local' is not an IP address or network" in settings_error(
        TRUSTED_PROXIES="10.0.0.1,proxy.local"
    )


def test_trust_x_forwarded_proto_alone_points_to_trusted_proxies():
    assert "replaced by TRUSTED_PROXIES" in settings_error(TRUST_X_FORWARDED_PROTO="true")
    assert settings_error(TRUST_X_FORWARDED_PROTO="true", TRUSTED_PROXIES="10.0.0.0/8") == ""
