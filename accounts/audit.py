"""Recording security events in the audit log (the only writer of AuditEvent)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest

from accounts.models import AuditEvent


def audit_record(
    *,
    event: str,
    user: User | AnonymousUser | None = None,
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


def client_ip(request: HttpRequest) -> str | None:
    """The peer address Django saw. Proxies are trusted only through accounts' proxy setting (issue 4)."""
    return request.META.get("REMOTE_ADDR") or None
