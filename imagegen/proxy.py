"""Believing X-Forwarded-* headers from trusted reverse proxies only (a WSGI middleware).

waitress can trust one proxy address, not a network, so it is told to pass the headers through
(run.py: --no-clear-untrusted-proxy-headers) and this middleware decides instead, before Django.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

Environ = dict[str, Any]
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDING_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_BY",
)


class TrustedProxyMiddleware:
    """From a trusted proxy: REMOTE_ADDR, scheme and host become what the proxy reported.

    From anybody else every forwarding header is removed, so nothing downstream (Django's
    SECURE_PROXY_SSL_HEADER, the audit log, rate limits) can be fooled by a client writing them.
    """

    def __init__(self, app: WSGIApp, trusted: Iterable[str]):
        self.app = app
        self.networks = tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in trusted if entry.strip())

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.trusts(environ.get("REMOTE_ADDR", "")):
            self.apply_forwarded(environ)
        else:
            for header in FORWARDING_HEADERS:
                environ.pop(header, None)
        return self.app(environ, start_response)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def apply_forwarded(self, environ: Environ) -> None:
        client = self.client_of(environ)
        if client:
            environ["REMOTE_ADDR"] = client
        proto = last_value(environ.get("HTTP_X_FORWARDED_PROTO", "")).lower()
        if proto in ("http", "https"):
            environ["wsgi.url_scheme"] = proto
            environ["HTTP_X_FORWARDED_PROTO"] = proto  # one value, as SECURE_PROXY_SSL_HEADER reads it
        else:
            environ.pop("HTTP_X_FORWARDED_PROTO", None)
        host = last_value(environ.get("HTTP_X_FORWARDED_HOST", ""))
        if host:
            environ["HTTP_HOST"] = host  # still checked against ALLOWED_HOSTS by Django

    def client_of(self, environ: Environ) -> str | None:
        """Walk X-Forwarded-For from the right past trusted proxies; the first other hop is the client.

        Hops left of it were written by the client itself and are never believed.
        """
        client = None
        hops = [hop.strip().strip('"') for hop in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        for hop in reversed([hop for hop in hops if hop]):
            try:
                ipaddress.ip_address(hop.strip("[]"))
            except ValueError:
                break  # garbage (or a port): stop at the last address we could read
            client = hop.strip("[]")
            if not self.trusts(client):
                break
        return client


def last_value(header: str) -> str:
    """The value added by the nearest proxy when a header holds a comma-separated list."""
    return header.rsplit(",", 1)[-1].strip()
