"""The OpenAI-compatible routes under /v1/: thin views over generation/gateway.py, in OpenAI's shapes.

Every failure on these routes, from a bad token to a provider outage, answers OpenAI's error shape
`{"error": {"message", "type", "param", "code"}}` (not the platform's), so OpenAI's SDKs raise
their own error classes. The routes are left out of the platform's OpenAPI schema (docs/api.md).
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import BearerTokenAuthentication
from accounts.idempotency import make_once
from accounts.ratelimits import RateLimitUnavailable
from accounts.throttling import ApiRateThrottle
from generation import gateway
from generation.views import serve_generation_file
from imagegen.api import BATCH_HEADER, openai_error
from imagegen.errors import ApplicationError, TooManyRequests
from imagegen.parsers import LimitedJSONParser

logger = logging.getLogger(__name__)

# Server-side refusals that come before anything is submitted: an SDK may safely send the call again.
NOTHING_SUBMITTED = (RateLimitUnavailable, gateway.GatewayBusy)
DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "invalid_json",
    exceptions.Throttled: "rate_limited",
}


def openai_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every exception of a gateway view as OpenAI's error shape (with Retry-After for a 429)."""
    status, message, code, param, retry_after = _describe(exc)
    response = Response(openai_error(status, message, code=code, param=param), status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    if (status >= 500 and not isinstance(exc, NOTHING_SUBMITTED)) or code == "quota_exceeded":
        # The SDKs resend 5xx answers; after a timeout or a provider failure the batch exists already
        # (and is charged), and an exhausted quota stays exhausted: a resend would not help.
        response["x-should-retry"] = "false"
    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if isinstance(exc, ApplicationError) and "batch_id" in exc.details:
        response[BATCH_HEADER] = exc.details["batch_id"]
    return response


def _describe(exc: Exception) -> tuple[int, str, str | None, str | None, int | None]:
    """Status, message, platform code, OpenAI parameter and Retry-After of an exception."""
    if isinstance(exc, ApplicationError):
        param = next((name for name in exc.details if name != "batch_id"), None)
        retry_after = exc.retry_after if isinstance(exc, TooManyRequests) else None
        return exc.status_code, exc.message, exc.code, param, retry_after
    if isinstance(exc, RequestDataTooBig):
        return 413, _("The request body is too large."), "request_too_large", None, None
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "invalid_request")
        wait = getattr(exc, "wait", None)
        return exc.status_code, str(exc.detail), code, None, int(wait) if wait else None
    logger.exception("Unhandled error in the OpenAI-compatible gateway", exc_info=exc)
    return 500, _("Something went wrong on our side. It has been logged."), None, None, None


class GatewayView(APIView):
    """Bearer token only (the platform's API tokens), counted against api_requests_per_minute."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ApiRateThrottle]
    parser_classes = [LimitedJSONParser]

    def get_exception_handler(self) -> Any:
        return openai_exception_handler

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> NoReturn:
        if request.authenticators and not request.successful_authenticator:
            message = _("Missing API key: send it as 'Authorization: Bearer <token>' (a platform API token).")
            raise exceptions.NotAuthenticated(message)
        super().permission_denied(request, message, code)


class ImageGenerationsView(GatewayView):
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        owner = cast(User, request.user)
        checked = gateway.images_request_check(body=request.data, user_id=owner.pk)
        with gateway.waiting_calls.slot():
            batch = make_once(  # a retry with the call's Idempotency-Key waits for the batch it made
                request,
                make=lambda: gateway.images_generate(owner=owner, request=checked),
                batch_of=lambda made: made.pk,
                resume=lambda batch_id: gateway.batch_resume(owner=owner, batch_id=batch_id),
            )
            batch = gateway.batch_wait(
                batch=batch, timeout=settings.GATEWAY_TIMEOUT_SECONDS, poll=settings.GATEWAY_POLL_SECONDS
            )
        generations = gateway.images_made(batch=batch)
        body = gateway.images_response(
            batch=batch,
            generations=generations,
            response_format=checked.response_format,
            url_for=lambda token: request.build_absolute_uri(reverse("gateway-image-file", args=[token])),
        )
        return Response(body, headers={BATCH_HEADER: str(batch.pk)})


class ModelListView(GatewayView):
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response({"object": "list", "data": gateway.models_offered(user_id=request.user.pk)})


class ModelDetailView(GatewayView):
    @extend_schema(exclude=True)
    def get(self, request: Request, model_id: str) -> Response:
        return Response(gateway.model_describe(name=model_id, user_id=request.user.pk))


class ImageFileView(GatewayView):
    """An image behind a signed, expiring link: no bearer token, the signature is the permission."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(exclude=True)
    def get(self, request: Request, token: str) -> HttpResponseBase:
        generation = gateway.image_from_token(token=token)
        return serve_generation_file(generation, "image")


def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under /v1/, answered as OpenAI does."""
    message = _("Invalid URL (%(method)s %(path)s).") % {"method": request.method, "path": request.path}
    return JsonResponse(openai_error(404, message, code=None), status=404)
