"""The one chokepoint for outgoing HTTP: explicit timeouts, an SSRF guard and typed errors.

Providers and webhooks call `request()`; nothing else in the platform opens connections.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx
from django.conf import settings

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=10.0)
USER_AGENT = "ImageGen/1.0"


@dataclass
class OutboundError(Exception):
    """A call that produced no HTTP response: `kind` is timeout, connection, blocked or invalid_url."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    @property
    def retryable(self) -> bool:
        return self.kind in ("timeout", "connection")


def request(
    method: str,
    url: str,
    *,
    timeout: httpx.Timeout | float | None = None,
    trusted: bool = False,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request and return the response, whatever its status; raise OutboundError otherwise.

    `trusted` is for addresses the operator configured (a provider's base URL), which may be on
    a private network; any other URL (one that came from a response or a user) must resolve to
    a public address unless its host is listed in OUTBOUND_ALLOWED_PRIVATE_HOSTS.
    """
    if not trusted:
        guard_url(url)
    headers = {"User-Agent": USER_AGENT, **(kwargs.pop("headers", None) or {})}
    try:
        with httpx.Client(timeout=timeout or DEFAULT_TIMEOUT, follow_redirects=False, verify=_ssl_context()) as client:
            return client.request(method, url, headers=headers, **kwargs)
    except httpx.TimeoutException as exc:
        raise OutboundError("timeout", f"{method} {_origin(url)} timed out ({type(exc).__name__})") from exc
    except httpx.InvalidURL as exc:
        raise OutboundError("invalid_url", str(exc)) from exc
    except (httpx.TransportError, OSError) as exc:
        raise OutboundError("connection", f"{method} {_origin(url)} failed: {exc}") from exc


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~40 ms of CPU each time."""
    return ssl.create_default_context(cafile=certifi.where())


def guard_url(url: str) -> None:
    """Refuse URLs that are not http(s) or that resolve to private, loopback or link-local addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError("invalid_url", f"Only http(s) URLs with a host are allowed: {url[:200]}")
    host = parts.hostname
    if host in settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise OutboundError("connection", f"Cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise OutboundError("blocked", f"{host} resolves to a non-public address ({address}).")


def retry_after_seconds(response: httpx.Response) -> float | None:
    """How long the server asked us to wait: `retry-after-ms`, or `Retry-After` in seconds or as a date."""
    milliseconds = response.headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
