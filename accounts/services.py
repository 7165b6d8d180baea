"""Account write operations: issuing, authenticating and revoking API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken

TOKEN_PREFIX = "ig_"  # noqa: S105 - a public marker, not a secret
# Writing last_used_at on every request would turn reads into writes; once a minute is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the full token string, shown to its owner exactly once


def _hash_secret(secret: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash cannot be brute-forced.
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, user: User, name: str, expires_at: datetime | None = None) -> IssuedToken:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip() or "API token",
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        expires_at=expires_at,
    )
    return IssuedToken(token=token, secret=f"{TOKEN_PREFIX}{prefix}_{secret}")


def token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token that `raw` names, or None; the secret is compared in constant time."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    prefix, _, secret = raw[len(TOKEN_PREFIX) :].partition("_")
    if not prefix or not secret:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _hash_secret(secret)):
        return None
    if not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
