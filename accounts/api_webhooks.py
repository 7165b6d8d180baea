"""The caller's webhook signing secret: read it, or rotate it (which also creates it)."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import WebhookSecret
from accounts.webhook_secrets import webhook_secret_get, webhook_secret_rotate, webhook_secret_text


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(
        allow_null=True,
        help_text="`whsec_` + base64 of the HMAC key; null when no secret was made yet (one is made with the "
        "first batch that sets a webhook_url, or by POST).",
    )
    created_at = serializers.DateTimeField(allow_null=True)
    rotated_at = serializers.DateTimeField(allow_null=True)


def _body(secret: WebhookSecret | None) -> dict[str, Any]:
    if secret is None:
        return {"secret": None, "created_at": None, "rotated_at": None}
    return {
        "secret": webhook_secret_text(secret.key),
        "created_at": secret.created_at,
        "rotated_at": secret.rotated_at,
    }


class WebhookSecretView(APIView):
    @extend_schema(responses=WebhookSecretSerializer, description="The secret your batch webhooks are signed with.")
    def get(self, request: Request) -> Response:
        secret = webhook_secret_get(user=cast(User, request.user))
        return Response(WebhookSecretSerializer(_body(secret)).data)

    @extend_schema(
        request=None,
        responses=WebhookSecretSerializer,
        description="Make a new secret (the old one stops working at once) and return it.",
    )
    def post(self, request: Request) -> Response:
        secret = webhook_secret_rotate(user=cast(User, request.user), request=request)
        return Response(WebhookSecretSerializer(_body(secret)).data)
