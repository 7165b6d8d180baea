"""Accounts REST endpoints: exchanging a username and password for an API token."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.serializers import TokenRequestSerializer, TokenSerializer
from accounts.services import token_create


class TokenObtainView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'  # so a failed login is a 401, not a 403

    @extend_schema(request=TokenRequestSerializer, responses={201: TokenSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None:
            raise exceptions.AuthenticationFailed(_("Wrong username or password."))
        issued = token_create(user=user, name=data.validated_data["name"])
        body = TokenSerializer(
            {
                "id": issued.token.id,
                "name": issued.token.name,
                "token": issued.secret,
                "created_at": issued.token.created_at,
                "expires_at": issued.token.expires_at,
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED)
