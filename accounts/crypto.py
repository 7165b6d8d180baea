"""Encryption of secrets the platform must read back (two-factor keys): Fernet, key derived by HKDF."""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@lru_cache(maxsize=8)
def _fernet(secret: str, purpose: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def secret_encrypt(value: bytes, *, purpose: str) -> str:
    """`value` encrypted and authenticated with a key for `purpose` derived from TOTP_KEYS_SECRET."""
    return _fernet(settings.TOTP_KEYS_SECRET, purpose).encrypt(value).decode()


def secret_decrypt(token: str, *, purpose: str) -> bytes:
    """The value `secret_encrypt` stored; raises cryptography's InvalidToken when the secret changed."""
    return _fernet(settings.TOTP_KEYS_SECRET, purpose).decrypt(token.encode())
