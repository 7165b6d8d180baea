"""The one chokepoint for outgoing HTTP: explicit timeouts, an SSRF guard and typed errors.

Providers and webhooks call `request()`; nothing else in the platform opens connections.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Collection
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpcore
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
    allowed_private_hosts: Collection[str] = (),
    read_body: bool = True,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request and return the response, whatever its status; raise OutboundError otherwise.

    `trusted` is for addresses the operator configured (a provider's base URL), which may be on
    a private network; any other URL (one that came from a response or a user) must resolve to
    a public address unless its host is listed in OUTBOUND_ALLOWED_PRIVATE_HOSTS or in
    `allowed_private_hosts` (the caller's own list, e.g. WEBHOOK_ALLOWED_HOSTS).
    With `read_body=False` only the status line and headers are read (a webhook receiver's answer
    body, which may be endless, is never downloaded); the response's content is then unavailable.
    """
    pinned = None if trusted else guard_url(url, allowed_private_hosts=allowed_private_hosts)
    headers = {"User-Agent": USER_AGENT, **(kwargs.pop("headers", None) or {})}
    try:
        with _client(timeout or DEFAULT_TIMEOUT, pinned) as client:
            if read_body:
                return client.request(method, url, headers=headers, **kwargs)
            response = client.send(client.build_request(method, url, headers=headers, **kwargs), stream=True)
            response.close()
            return response
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


def _client(timeout: httpx.Timeout | float, pinned: tuple[str, str] | None) -> httpx.Client:
    # trust_env=False: an HTTP(S)_PROXY from the environment would connect on our behalf, unpinned.
    transport = PinnedTransport(pinned, verify=_ssl_context(), trust_env=False) if pinned else None
    return httpx.Client(timeout=timeout, follow_redirects=False, verify=_ssl_context(), transport=transport)


class PinnedBackend(httpcore.SyncBackend):
    """Connects to the address the guard checked, whatever the host name resolves to by now."""

    def __init__(self, host: str, address: str) -> None:
        self.host, self.address = host, address

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        if host.strip("[]").lower() != self.host:
            raise httpcore.ConnectError(f"{host} is not the checked host {self.host}")
        return super().connect_tcp(self.address, port, *args, **kwargs)


class PinnedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool on a PinnedBackend. The URL keeps the host name,
    so the Host header, TLS SNI and certificate check all use it; only the TCP connect is pinned
    (resolving again at connect time would let DNS rebinding swap in a private address)."""

    def __init__(self, pinned: tuple[str, str], *, verify: ssl.SSLContext, trust_env: bool) -> None:
        super().__init__(verify=verify, trust_env=trust_env)
        # httpx has no public option for the network backend; its pool takes one.
        self._pool = httpcore.ConnectionPool(ssl_context=verify, network_backend=PinnedBackend(*pinned))


def guard_url(url: str, *, allowed_private_hosts: Collection[str] = ()) -> tuple[str, str] | None:
    """Refuse URLs that are not http(s) or that resolve to anything but public addresses.

    Returns (host, address) to connect to: the host name is resolved here, once, and the request
    then connects to exactly that address. None for hosts listed in OUTBOUND_ALLOWED_PRIVATE_HOSTS
    or in `allowed_private_hosts`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError("invalid_url", f"Only http(s) URLs with a host are allowed: {url[:200]}")
    host = parts.hostname.lower()
    if host in settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS or host in allowed_private_hosts:
        return None
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError("connection", f"Cannot resolve {host}: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if not address_is_public(address):
            raise OutboundError("blocked", f"{host} resolves to a non-public address ({address}).")
    if not addresses:
        raise OutboundError("connection", f"Cannot resolve {host}.")
    return host, str(addresses[0])


# IPv6 ranges that carry an IPv4 address inside (NAT64, 6to4, Teredo, IPv4-compatible and
# IPv4-mapped): a gateway may turn them into a connection to any IPv4 address, private ones
# included, so none of them is accepted, whatever IPv4 address they embed.
IPV6_WRAPPING_IPV4 = tuple(
    ipaddress.ip_network(net)
    for net in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "::/96", "::ffff:0:0/96")
)


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and any(address in net for net in IPV6_WRAPPING_IPV4):
        return False
    return address.is_global and not address.is_multicast


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
