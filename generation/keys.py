"""Users' own provider API keys (bring your own key): encrypted with Fernet, never shown back in full."""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts.audit import audit_record
from generation.models import ProviderKey
from generation.providers import all_providers
from imagegen.errors import NotFound, ValidationFailed

MIN_KEY_LENGTH = 8
MAX_KEY_LENGTH = 500


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"imagegen provider keys").derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def key_providers() -> dict[str, str]:
    """Providers a user may bring a key for: name -> label."""
    return {name: p.label for name, p in all_providers().items() if p.accepts_user_key}


def provider_key_save(*, owner: User, provider: str, api_key: str, request: HttpRequest | None = None) -> ProviderKey:
    """Add or replace the owner's key for `provider`."""
    api_key = api_key.strip()
    if provider not in key_providers():
        names = ", ".join(sorted(key_providers()))
        message = _("You cannot add a key for %(provider)r. Choose one of: %(names)s.") % {
            "provider": provider,
            "names": names,
        }
        raise ValidationFailed(message, code="unknown_provider", details={"provider": [message]})
    if not MIN_KEY_LENGTH <= len(api_key) <= MAX_KEY_LENGTH or any(c.isspace() for c in api_key):
        message = _("That does not look like an API key: %(min)d to %(max)d characters, no spaces.") % {
            "min": MIN_KEY_LENGTH,
            "max": MAX_KEY_LENGTH,
        }
        raise ValidationFailed(message, code="invalid_key", details={"api_key": [message]})
    encrypted = _fernet(settings.PROVIDER_KEYS_SECRET).encrypt(api_key.encode()).decode()
    with transaction.atomic():
        key, _created = ProviderKey.objects.update_or_create(
            owner=owner, provider=provider, defaults={"encrypted_key": encrypted, "last4": api_key[-4:]}
        )
        audit_record(event="provider_key.created", user=owner, request=request, provider=provider)
    return key


def provider_key_delete(*, owner: User, provider: str, request: HttpRequest | None = None) -> None:
    with transaction.atomic():
        deleted, _rows = ProviderKey.objects.filter(owner=owner, provider=provider).delete()
        if not deleted:
            raise NotFound(_("You have no key for this provider."))
        audit_record(event="provider_key.deleted", user=owner, request=request, provider=provider)


def provider_key_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ProviderKey]:
    return ProviderKey.objects.filter(owner_id=user.pk)


def provider_key_names(*, user_id: int | None) -> set[str]:
    return set(ProviderKey.objects.filter(owner_id=user_id).values_list("provider", flat=True))


def provider_key_secret(*, owner_id: int | None, provider: str) -> str:
    """The owner's decrypted key for `provider`, or "" when they have none (or it no longer decrypts)."""
    encrypted = (
        ProviderKey.objects.filter(owner_id=owner_id, provider=provider).values_list("encrypted_key", flat=True).first()
    )
    if not encrypted:
        return ""
    try:
        return _fernet(settings.PROVIDER_KEYS_SECRET).decrypt(encrypted.encode()).decode()
    except InvalidToken:
        return ""  # PROVIDER_KEYS_SECRET changed: the key must be saved again
