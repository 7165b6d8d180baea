"""Accounts REST endpoints: token login, the caller's account summary, token management, sign-up."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors
from accounts.audit import audit_record, client_ip
from accounts.models import ApiToken
from accounts.ratelimits import rate_limit_enforce
from accounts.serializers import (
    MeSerializer,
    SignupSerializer,
    TokenCreateSerializer,
    TokenInfoSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)
from accounts.services import IssuedToken, LoginFailed, login_check_password, token_create, token_revoke, user_signup
from accounts.two_factor import two_factor_enabled, two_factor_verify
from imagegen.errors import NotFound


def issued_body(issued: IssuedToken) -> dict[str, Any]:
    token = issued.token
    data = {"id": token.id, "name": token.name, "token": issued.secret}
    return dict(TokenSerializer({**data, "created_at": token.created_at, "expires_at": token.expires_at}).data)


def token_info(token: ApiToken) -> dict[str, Any]:
    fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "is_active"]
    return dict(TokenInfoSerializer({field: getattr(token, field) for field in fields}).data)


def _expiry(data: dict[str, Any]) -> Any:
    days = data.get("expires_in_days")
    return timezone.now() + timedelta(days=days) if days else data.get("expires_at")


class TokenObtainView(APIView):
    """Exchange a username and password (and a 2FA code, when the account has 2FA) for a new token."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'  # so a failed login is a 401, not a 403

    @extend_schema(request=TokenRequestSerializer, responses={201: TokenSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = login_check_password(
            request=request._request, username=values["username"], password=values["password"], channel="api"
        )
        if two_factor_enabled(user=user):
            self._check_second_factor(request, user, values["otp"])
        issued = token_create(user=user, name=values["name"], expires_at=_expiry(values), request=request._request)
        audit_record(event="login.succeeded", user=user, request=request._request, channel="api")
        return Response(issued_body(issued), status=status.HTTP_201_CREATED)

    def _check_second_factor(self, request: Request, user: User, otp: str) -> None:
        if not otp:
            raise LoginFailed(
                _("This account has two-factor authentication: send the code as otp."), code="otp_required"
            )
        if two_factor_verify(user=user, token=otp) is None:
            audit_record(event="login.failed", user=user, request=request._request, channel="api", reason="otp")
            raise LoginFailed(_("Wrong two-factor code."), code="otp_invalid")


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(selectors.account_summary(user=cast(User, request.user)))


class TokenListCreateView(GenericAPIView):
    serializer_class = TokenInfoSerializer

    @extend_schema(responses=TokenInfoSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.token_list(user=request.user))
        return self.get_paginated_response([token_info(token) for token in page or []])

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenSerializer})
    def post(self, request: Request) -> Response:
        data = TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = token_create(
            user=cast(User, request.user),
            name=data.validated_data["name"],
            expires_at=_expiry(data.validated_data),
            request=request._request,
        )
        return Response(issued_body(issued), status=status.HTTP_201_CREATED)


class TokenDetailView(APIView):
    @extend_schema(responses=TokenInfoSerializer)
    def get(self, request: Request, token_id: uuid.UUID) -> Response:
        return Response(token_info(selectors.token_get(user=request.user, token_id=token_id)))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, token_id: uuid.UUID) -> Response:
        token = selectors.token_get(user=request.user, token_id=token_id)
        token_revoke(token=token, actor=request.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRevokeView(APIView):
    @extend_schema(request=None, responses=TokenInfoSerializer)
    def post(self, request: Request, token_id: uuid.UUID) -> Response:
        token = selectors.token_get(user=request.user, token_id=token_id)
        return Response(token_info(token_revoke(token=token, actor=request.user, request=request._request)))


class SignupView(APIView):
    """Create an account; only when ALLOW_SIGNUP is on (otherwise this endpoint does not exist)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(request=SignupSerializer, responses={201: MeSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        if not settings.ALLOW_SIGNUP:
            raise NotFound(_("Sign-up is turned off on this server."), code="signup_disabled")
        data = SignupSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rate_limit_enforce(name="login_attempts", ident=f"signup:{client_ip(request._request)}")
        user = user_signup(**data.validated_data, request=request._request)
        return Response(selectors.account_summary(user=user), status=status.HTTP_201_CREATED)
