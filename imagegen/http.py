"""The one chokepoint for outgoing HTTP: explicit timeouts, an SSRF guard and typed errors.

Providers and webhooks call `request()`; nothing else in the platform opens connections.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
# When the calls of a block must end (monotonic clock), set by `budget()`; None: no such bound.
_budget_ends_at: ContextVar[float | None] = ContextVar("imagegen_http_budget_ends_at", default=None)


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
    deadline: float | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request and return the response, whatever its status; raise OutboundError otherwise.

    `trusted` is for addresses the operator configured (a provider's base URL), which may be on
    a private network; any other URL (one that came from a response or a user) must resolve to
    a public address unless its host is listed in OUTBOUND_ALLOWED_PRIVATE_HOSTS or in
    `allowed_private_hosts` (the caller's own list, e.g. WEBHOOK_ALLOWED_HOSTS).
    With `read_body=False` only the status line and headers are read (a webhook receiver's answer
    body, which may be endless, is never downloaded); the response's content is then unavailable.
    `deadline` bounds the whole call in seconds (connect, send, status line, headers and the body
    read here): the timeouts bound each read, and a server that trickles a byte at a time within
    them would otherwise hold the call for as long as it likes. Inside a `budget()` block the call
    also ends when the block's time is up, whichever comes first.
    """
    pinned = None if trusted else guard_url(url, allowed_private_hosts=allowed_private_hosts)
    headers = {"User-Agent": USER_AGENT, **(kwargs.pop("headers", None) or {})}
    ends_at = _earliest(None if deadline is None else time.monotonic() + deadline, _budget_ends_at.get())
    try:
        with _client(timeout or DEFAULT_TIMEOUT, pinned, ends_at) as client:
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


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Every request sent inside the block ends within `seconds` from now, however many there are.

    One generation attempt is a few calls (create, polls, download); the budget keeps the attempt
    as a whole inside the time its task was given, even against a server that trickles its answers.
    """
    token = _budget_ends_at.set(_earliest(time.monotonic() + seconds, _budget_ends_at.get()))
    try:
        yield
    finally:
        _budget_ends_at.reset(token)


def _earliest(*moments: float | None) -> float | None:
    return min((moment for moment in moments if moment is not None), default=None)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~40 ms of CPU each time."""
    return ssl.create_default_context(cafile=certifi.where())


def _client(timeout: httpx.Timeout | float, pinned: tuple[str, str] | None, ends_at: float | None) -> httpx.Client:
    # trust_env=False: an HTTP(S)_PROXY from the environment would connect on our behalf, unpinned.
    transport = None
    if pinned or ends_at is not None:
        transport = GuardedTransport(GuardedBackend(pinned, ends_at), verify=_ssl_context(), trust_env=False)
    return httpx.Client(timeout=timeout, follow_redirects=False, verify=_ssl_context(), transport=transport)


class GuardedBackend(httpcore.SyncBackend):
    """Connects to the address the guard checked (when `pinned`), whatever the host name resolves to
    by now, and keeps every connect, read and write within the call's deadline (when `ends_at`)."""

    def __init__(self, pinned: tuple[str, str] | None, ends_at: float | None) -> None:
        self.pinned, self.ends_at = pinned, ends_at

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, *args: Any, **kwargs: Any
    ) -> httpcore.NetworkStream:
        if self.pinned:
            if host.strip("[]").lower() != self.pinned[0]:
                raise httpcore.ConnectError(f"{host} is not the checked host {self.pinned[0]}")
            host = self.pinned[1]
        timeout = _within(timeout, self.ends_at, httpcore.ConnectTimeout)
        stream = super().connect_tcp(host, port, timeout, *args, **kwargs)
        return stream if self.ends_at is None else DeadlineStream(stream, self.ends_at)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write gets no more time than the call has left."""

    def __init__(self, stream: httpcore.NetworkStream, ends_at: float) -> None:
        self.stream, self.ends_at = stream, ends_at

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, _within(timeout, self.ends_at, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, _within(timeout, self.ends_at, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _within(timeout, self.ends_at, httpcore.ConnectTimeout)
        return DeadlineStream(self.stream.start_tls(ssl_context, server_hostname, timeout), self.ends_at)

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


def _within(timeout: float | None, ends_at: float | None, expired: type[Exception]) -> float | None:
    """The operation's timeout, cut to what is left before `ends_at`; `expired` once nothing is."""
    if ends_at is None:
        return timeout
    left = ends_at - time.monotonic()
    if left <= 0:
        raise expired("the request's overall deadline has passed")
    return left if timeout is None else min(timeout, left)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool on a GuardedBackend. The URL keeps the host name,
    so the Host header, TLS SNI and certificate check all use it; only the TCP connect is pinned
    (resolving again at connect time would let DNS rebinding swap in a private address)."""

    def __init__(self, backend: GuardedBackend, *, verify: ssl.SSLContext, trust_env: bool) -> None:
        super().__init__(verify=verify, trust_env=trust_env)
        # httpx has no public option for the network backend; its pool takes one.
        self._pool = httpcore.ConnectionPool(ssl_context=verify, network_backend=backend)


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
