"""Account write operations: tokens, password logins under rate limits, profiles, sign-up, new users, deactivation."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import audit_record, client_ip
from accounts.models import ApiToken, Profile
from accounts.ratelimits import rate_limit_hit, rate_limit_peek, rate_limit_refund, rate_limited_error
from imagegen.errors import ApplicationError, Forbidden, ValidationFailed

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "ig_"  # noqa: S105 - a public marker, not a secret
# Writing last_used_at on every request would turn reads into writes; once a minute is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)
TOKEN_NAME_MAX_LENGTH = 100
MAX_TOKEN_LIFETIME = timedelta(days=3650)
Actor = User | AbstractBaseUser | AnonymousUser | None


class LoginFailed(ApplicationError):
    status_code = 401
    default_code = "authentication_failed"


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the full token string, shown to its owner exactly once


def _hash_secret(secret: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash cannot be brute-forced.
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(
    *, user: User, name: str, expires_at: datetime | None = None, request: HttpRequest | None = None
) -> IssuedToken:
    """Issue a named token; only its hash is stored, so the returned secret is the one chance to see it."""
    name = name.strip() or "API token"
    if len(name) > TOKEN_NAME_MAX_LENGTH:
        message = _("A token name has at most %(max)d characters.") % {"max": TOKEN_NAME_MAX_LENGTH}
        raise ValidationFailed(message, details={"name": [message]})
    _check_expiry(expires_at)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, secret_hash=_hash_secret(secret), expires_at=expires_at
    )
    audit_record(
        event="token.created", user=user, request=request, token=token.prefix, name=name, expires_at=_iso(expires_at)
    )
    return IssuedToken(token=token, secret=f"{TOKEN_PREFIX}{prefix}_{secret}")


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is None:
        return
    now = timezone.now()
    if expires_at <= now:
        message = _("The expiry date must be in the future.")
        raise ValidationFailed(message, details={"expires_at": [message]})
    if expires_at > now + MAX_TOKEN_LIFETIME:
        message = _("A token may live at most ten years.")
        raise ValidationFailed(message, details={"expires_at": [message]})


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


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
        try:
            with transaction.atomic():
                ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        except DatabaseError as exc:  # a database that takes no writes (full disk) must not fail reads
            logger.warning("Could not note that token %s was used: %s", token.prefix, exc)
        token.last_used_at = now
    return token


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: Actor = None, request: HttpRequest | None = None) -> ApiToken:
    """Revoke a token at once; revoking twice is harmless and recorded once."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        by = actor if actor is not None else token.user
        audit_record(event="token.revoked", user=by, request=request, token=token.prefix, owner=token.user.username)
    return token


@transaction.atomic
def tokens_revoke_all(*, user: User, reason: str, request: HttpRequest | None = None) -> int:
    """End every active token of the user: after a password change or two-factor enrolment, a token
    issued under the old credentials must not outlive them. Returns how many were revoked."""
    count = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if count:
        audit_record(event="token.revoked_all", user=user, request=request, reason=reason, count=count)
    return count


def login_check_password(*, request: HttpRequest, username: str, password: str, channel: str) -> User:
    """The user that `username` and `password` name, under two limits that cannot lock the owner out.

    `login_attempts` counts every attempt per client IP before the password is checked (an
    attempt that succeeds is given back), so one address cannot guess in bulk. Failures are also
    counted per account (`login_failures_per_account`); past that limit the account is slowed
    down, not locked: an address that has already failed on it waits for the window to end, while
    an address with no failure on it (the owner on a new network) is still checked.
    """
    ip = client_ip(request) or "unknown"
    account = f"user:{username.strip().lower()}"
    _count_login_attempt(request, username, f"ip:{ip}", channel)
    _check_account_slowdown(request, username, account, ip, channel)
    user = authenticate(request, username=username, password=password)
    if not isinstance(user, User):
        _record_failure(request, username, account, ip, channel)
        raise LoginFailed(_("Wrong username or password."))
    rate_limit_refund(name="login_attempts", ident=f"ip:{ip}")
    return user


def _count_login_attempt(request: HttpRequest, username: str, ident: str, channel: str) -> None:
    """Count the attempt per client IP atomically, so parallel guesses cannot slip past the limit."""
    hit = rate_limit_hit(name="login_attempts", ident=ident)
    if not hit.allowed:
        audit_record(event="login.rate_limited", username=username[:150], request=request, channel=channel)
        raise rate_limited_error(hit)


def _check_account_slowdown(request: HttpRequest, username: str, account: str, ip: str, channel: str) -> None:
    failures = rate_limit_peek(name="login_failures_per_account", ident=account)
    if failures.allowed:
        return
    from_here = rate_limit_peek(name="login_failures_per_account", ident=f"{account}|ip:{ip}")
    if from_here.count == 0:
        return
    rate_limit_refund(name="login_attempts", ident=f"ip:{ip}")  # nothing was checked
    audit_record(
        event="login.rate_limited", username=username[:150], request=request, channel=channel, reason="account"
    )
    raise rate_limited_error(from_here)


def _record_failure(request: HttpRequest, username: str, account: str, ip: str, channel: str) -> None:
    audit_record(event="login.failed", username=username[:150], request=request, channel=channel)
    hit = rate_limit_hit(name="login_failures_per_account", ident=account)
    rate_limit_hit(name="login_failures_per_account", ident=f"{account}|ip:{ip}")
    if hit.count == hit.rate.limit + 1:
        audit_record(event="login.account_slowed", username=username[:150], request=request, channel=channel)


def profile_update(*, user: User, language: str, request: HttpRequest | None = None) -> Profile:
    if language and language not in dict(settings.LANGUAGES):
        message = _("Choose one of the offered languages.")
        raise ValidationFailed(message, details={"language": [message]})
    profile, _created = Profile.objects.update_or_create(user=user, defaults={"language": language})
    audit_record(event="profile.updated", user=user, request=request, language=language)
    return profile


@transaction.atomic
def user_signup(*, username: str, email: str, password: str, request: HttpRequest | None = None) -> User:
    """Create an ordinary account (only reachable when ALLOW_SIGNUP is on); the password is validated."""
    if User.objects.filter(username__iexact=username).exists():
        message = _("That username is taken.")
        raise ValidationFailed(message, code="username_taken", details={"username": [message]})
    user = User(username=username, email=email)
    _validate_password(password, user)
    user.set_password(password)
    user.save()
    audit_record(event="account.signed_up", user=user, request=request)
    return user


@transaction.atomic
def user_create(
    *, actor: User, username: str, email: str, password: str, is_staff: bool = False, request: HttpRequest | None = None
) -> User:
    """A staff member adds a colleague's account with an initial password (validated like any other)."""
    if not actor.is_staff:
        raise Forbidden(_("Only staff can add users."))
    if User.objects.filter(username__iexact=username).exists():
        message = _("That username is taken.")
        raise ValidationFailed(message, code="username_taken", details={"username": [message]})
    user = User(username=username, email=email, is_staff=is_staff)
    _validate_password(password, user)
    user.set_password(password)
    user.save()
    audit_record(event="user.created", user=actor, request=request, target=username, is_staff=is_staff)
    return user


def _validate_password(password: str, user: User) -> None:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ValidationFailed(" ".join(error.messages), details={"password": error.messages}) from None


@transaction.atomic
def user_deactivate(*, user: User, actor: Actor, request: HttpRequest | None = None) -> User:
    """Lock an account out: no login, no session, no token works any more (rows are kept)."""
    if user.is_active:
        User.objects.filter(pk=user.pk).update(is_active=False)
        user.is_active = False
        audit_record(event="user.deactivated", user=actor, request=request, target=user.username)
    return user
