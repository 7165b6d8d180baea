"""Two-factor authentication with django-otp: one TOTP authenticator plus single-use recovery codes."""

from __future__ import annotations

import base64
import io

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_otp import devices_for_user, user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.qr import write_qrcode_image

from accounts.audit import audit_record
from accounts.models import Authenticator
from accounts.ratelimits import rate_limit_enforce, rate_limit_refund
from accounts.services import tokens_revoke_all
from imagegen.errors import ValidationFailed

RECOVERY_CODE_COUNT = 10
AUTHENTICATOR_NAME = "authenticator"
RECOVERY_NAME = "recovery codes"


def two_factor_enabled(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and user_has_device(user, confirmed=True)


def recovery_codes_left(*, user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def totp_setup_start(*, user: User) -> Authenticator:
    """A fresh, unconfirmed authenticator; it does nothing until a code from it is confirmed."""
    Authenticator.objects.filter(user=user, confirmed=False).delete()
    return Authenticator.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def totp_pending_device(*, user: User) -> Authenticator | None:
    return Authenticator.objects.filter(user=user, confirmed=False).order_by("-id").first()


def totp_qr_data_uri(device: Authenticator) -> str:
    buffer = io.BytesIO()
    write_qrcode_image(device.config_url, buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def totp_secret_text(device: Authenticator) -> str:
    """The key in base32, grouped by four, for typing into an authenticator by hand."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


@transaction.atomic
def totp_setup_confirm(
    *, user: User, token: str, request: HttpRequest | None = None
) -> tuple[Authenticator, list[str]]:
    """Turn two-factor on once the user proves the authenticator works; returns it and new recovery codes."""
    device = totp_pending_device(user=user)
    if device is None:
        message = _("Start the setup again: no authenticator is waiting to be confirmed.")
        raise ValidationFailed(message, code="no_pending_device", details={"token": [message]})
    rate_limit_enforce(name="login_attempts", ident=f"otp:{user.pk}")
    if not device.verify_token(_clean(token)):
        message = _("That code is not right. Check the time on your phone and try the newest code.")
        raise ValidationFailed(message, code="invalid_otp", details={"token": [message]})
    rate_limit_refund(name="login_attempts", ident=f"otp:{user.pk}")
    Authenticator.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _new_recovery_codes(user)
    audit_record(event="two_factor.enabled", user=user, request=request)
    # Tokens were issued without a second factor; new ones need the code (documented in docs/api.md).
    tokens_revoke_all(user=user, reason="two_factor_enabled", request=request)
    return device, codes


@transaction.atomic
def recovery_codes_regenerate(*, user: User, request: HttpRequest | None = None) -> list[str]:
    codes = _new_recovery_codes(user)
    audit_record(event="two_factor.recovery_codes_regenerated", user=user, request=request)
    return codes


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def two_factor_disable(
    *, user: User, actor: AbstractBaseUser | None = None, request: HttpRequest | None = None
) -> None:
    """Remove every authenticator and recovery code of the user."""
    Authenticator.objects.filter(user=user).delete()
    TOTPDevice.objects.filter(user=user).delete()  # any left from before secrets were encrypted
    StaticDevice.objects.filter(user=user).delete()
    audit_record(event="two_factor.disabled", user=actor or user, request=request, target=user.username)


def two_factor_verify(*, user: User, token: str) -> Device | None:
    """The confirmed device (authenticator or unused recovery code) that accepts `token`, or None.

    Counted against login_attempts per user, so codes cannot be guessed in bulk.
    """
    rate_limit_enforce(name="login_attempts", ident=f"otp:{user.pk}")
    cleaned = _clean(token)
    if not cleaned:
        return None
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if device.verify_token(cleaned):
                rate_limit_refund(name="login_attempts", ident=f"otp:{user.pk}")
                return device
    return None


def _clean(token: str) -> str:
    return "".join(token.split()).replace("-", "").lower()
