"""Webhook REST endpoints of a batch: its deliveries, and sending one again."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import selectors, services
from generation.serializers import WebhookDeliverySerializer


class BatchWebhookListView(APIView):
    @extend_schema(
        responses=WebhookDeliverySerializer(many=True),
        description="The webhook deliveries of a batch, newest first: one per time the batch finished.",
    )
    def get(self, request: Request, batch_id: uuid.UUID) -> Response:
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        deliveries = selectors.webhook_delivery_list(batch=batch)
        return Response(WebhookDeliverySerializer(deliveries, many=True).data)


class BatchWebhookResendView(APIView):
    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        description="Send the delivery again now, with the same `webhook-id` and a fresh timestamp and "
        "signature; failed ones get a new 24 h retry window. 409 while an attempt is in flight.",
    )
    def post(self, request: Request, batch_id: uuid.UUID, delivery_id: uuid.UUID) -> Response:
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        delivery = selectors.webhook_delivery_get(batch=batch, delivery_id=delivery_id)
        delivery = services.webhook_delivery_resend(delivery=delivery)
        delivery.refresh_from_db()
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
