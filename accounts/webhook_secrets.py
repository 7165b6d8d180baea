"""Each user's webhook signing secret: created on first need, shown to its owner, rotated on request.

The secret follows the Standard Webhooks format: `whsec_` followed by the base64 of 32 random
bytes; the HMAC key is the decoded bytes.
"""

from __future__ import annotations

import base64
import secrets

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.crypto import secret_encrypt
from accounts.models import WEBHOOK_SECRET_PURPOSE, WebhookSecret

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix of the specification
SECRET_BYTES = 32


def webhook_secret_text(key: bytes) -> str:
    """The secret as users copy it into their receiver."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def webhook_secret_get(*, user: User) -> WebhookSecret | None:
    return WebhookSecret.objects.filter(user=user).first()


def webhook_secret_shown(*, user: User) -> str | None:
    """The secret as its owner sees it in the portal and the API; None when none was made yet."""
    secret = webhook_secret_get(user=user)
    return webhook_secret_text(secret.key) if secret is not None else None


def webhook_secret_ensure(*, user: User) -> WebhookSecret:
    """The user's secret, made now if they have none (a batch with a webhook needs one)."""
    existing = webhook_secret_get(user=user)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return WebhookSecret.objects.create(user=user, encrypted_secret=_new_encrypted_key())
    except IntegrityError:  # created by a concurrent request meanwhile
        return WebhookSecret.objects.get(user=user)


def webhook_secret_rotate(*, user: User, request: HttpRequest | None = None) -> WebhookSecret:
    """A new random secret replaces the old one at once; later deliveries are signed with it."""
    with transaction.atomic():
        secret, created = WebhookSecret.objects.select_for_update().get_or_create(
            user=user, defaults={"encrypted_secret": _new_encrypted_key()}
        )
        if not created:
            secret.encrypted_secret = _new_encrypted_key()
            secret.rotated_at = timezone.now()
            secret.save(update_fields=["encrypted_secret", "rotated_at"])
        audit_record(event="webhook_secret.rotated", user=user, request=request, created=created)
    return secret


def _new_encrypted_key() -> str:
    return secret_encrypt(secrets.token_bytes(SECRET_BYTES), purpose=WEBHOOK_SECRET_PURPOSE)
