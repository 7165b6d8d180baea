"""Account reads, always scoped to the user who asks: their tokens, profile and account summary."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import ApiToken, Profile
from accounts.quotas import quota_usage
from accounts.ratelimits import rate_limit_peek
from accounts.two_factor import recovery_codes_left, two_factor_enabled
from imagegen.errors import NotFound


def owner_pk(user: AbstractBaseUser | AnonymousUser) -> int:
    """The id to scope reads by; an anonymous user's is 0, which owns nothing."""
    return int(user.pk or 0)


def token_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user_id=owner_pk(user)).order_by("-created_at")


def token_get(*, user: AbstractBaseUser | AnonymousUser, token_id: uuid.UUID | str) -> ApiToken:
    """The user's own token; another user's, or an unknown id, is the same 404."""
    try:
        return ApiToken.objects.select_related("user").get(pk=token_id, user_id=owner_pk(user))
    except (ApiToken.DoesNotExist, ValidationError, ValueError):
        raise NotFound(_("No such token.")) from None


def profile_language(*, user: AbstractBaseUser | AnonymousUser) -> str:
    return Profile.objects.filter(user_id=owner_pk(user)).values_list("language", flat=True).first() or ""


def account_summary(*, user: User) -> dict[str, Any]:
    """Who the user is and how much of their quotas and API rate they have used."""
    api_rate = rate_limit_peek(name="api_requests_per_minute", ident=f"user:{user.pk}")
    return {
        "user": {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "is_staff": user.is_staff,
            "language": profile_language(user=user),
            "two_factor_enabled": two_factor_enabled(user=user),
            "recovery_codes_left": recovery_codes_left(user=user),
        },
        "quotas": quota_usage(user=user).as_dict(),
        "rate_limits": {
            "api_requests_per_minute": {
                "limit": api_rate.rate.limit,
                "period_seconds": api_rate.rate.seconds,
                "used": api_rate.count,
                "remaining": api_rate.remaining,
            }
        },
    }
