"""Recording security events in the audit log (the only writer of AuditEvent)."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.http import HttpRequest

from accounts.models import AuditEvent


def audit_record(
    *,
    event: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
    username: str = "",
    request: HttpRequest | None = None,
    **details: Any,
) -> AuditEvent:
    """Write one audit entry; `event` is a stable dotted name such as "token.created"."""
    known_user = user if isinstance(user, User) else None
    return AuditEvent.objects.create(
        event=event,
        user=known_user,
        username=username or (known_user.get_username() if known_user else ""),
        ip_address=client_ip(request) if request is not None else None,
        user_agent=(request.headers.get("User-Agent", "")[:300] if request is not None else ""),
        details=details,
    )


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the peer, unless the peer is a trusted proxy (TRUSTED_PROXIES).

    Then X-Forwarded-For is read from the right, skipping trusted proxies; the first other
    address is the client. Entries left of it were written by the client and are ignored, so
    a forged header cannot change who is counted or logged.
    """
    peer = request.META.get("REMOTE_ADDR") or None
    trusted = _trusted_networks(tuple(settings.TRUSTED_PROXIES))
    if peer is None or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        if not _is_ip(hop):
            break
        client = hop
        if not _is_trusted(hop, trusted):
            break
    return client


@functools.lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def _is_trusted(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
