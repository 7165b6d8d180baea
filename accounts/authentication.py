"""DRF authentication by `Authorization: Bearer <token>`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.services import token_authenticate
from accounts.two_factor import two_factor_enabled
from imagegen.errors import Forbidden


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _sep, raw = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        token = token_authenticate(raw=raw.strip())
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        if settings.REQUIRE_2FA_FOR_STAFF and token.user.is_staff and not two_factor_enabled(user=token.user):
            # The middleware cannot see bearer tokens (DRF authenticates inside the view), so staff
            # tokens are held to the same rule here.
            message = _("Staff accounts must set up two-factor authentication first.")
            raise Forbidden(message, code="two_factor_required")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'
