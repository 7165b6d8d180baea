"""REST plumbing shared by every app: the one error shape, pagination and JSON error pages."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from imagegen.errors import ApplicationError, TooManyRequests

logger = logging.getLogger(__name__)

DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "parse_error",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "validation_error",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


# The OpenAI-compatible routes (/v1/) answer OpenAI's error shape instead, which OpenAI's SDKs read.
# OpenAI's `type` for the platform's error codes that have their own; otherwise it follows the status.
ERROR_TYPES = {
    "rate_limited": "requests",
    "quota_exceeded": "insufficient_quota",
    "content_policy_violation": "image_generation_user_error",
}
# OpenAI's `code` for the platform's codes that OpenAI's clients know by another name.
ERROR_CODES = {
    "rate_limited": "rate_limit_exceeded",
    "quota_exceeded": "insufficient_quota",
    "not_authenticated": "invalid_api_key",
    "authentication_failed": "invalid_api_key",
}


def openai_error(status: int, message: str, *, code: str | None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body for a failure the platform calls `code`, at HTTP `status`."""
    kind = "server_error" if status >= 500 else ERROR_TYPES.get(code or "", "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": ERROR_CODES.get(code or "", code)}}


def _validation_message(detail: Any) -> str:
    """The first problem in a DRF validation detail, phrased with the field that has it."""
    if isinstance(detail, dict):
        for field, problems in detail.items():
            inner = _validation_message(problems)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _validation_message(detail[0])
    return str(detail)


def _request_limit_error(exc: Exception) -> tuple[str, str, int] | None:
    """The code, message and status for a request Django refused to read (size, field count)."""
    if isinstance(exc, RequestDataTooBig):
        message = _("The request body is too large.")
        return "request_too_large", message, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return "too_many_fields", _("The request has too many form fields or files."), status.HTTP_400_BAD_REQUEST
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    refused = _request_limit_error(exc)
    if refused is not None:
        code, message, status_code = refused
        return Response(error_body(code, message), status=status_code)
    if isinstance(exc, ApplicationError):
        app_response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if isinstance(exc, TooManyRequests) and exc.retry_after is not None:
            app_response["Retry-After"] = str(exc.retry_after)
        return app_response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    drf_response = drf_exception_handler(exc, context)
    if drf_response is None:
        logger.exception("Unhandled error in API view", exc_info=exc)
        _report(exc)
        return Response(
            error_body("server_error", _("Something went wrong on our side. It has been logged.")),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response = drf_response
    assert isinstance(exc, exceptions.APIException)
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = _("Invalid input. %(problem)s") % {"problem": _validation_message(details)}
        response.data = error_body(code, message, details)
    else:
        response.data = error_body(code, str(exc.detail))
    return response


def _report(exc: Exception) -> None:
    try:
        import sentry_sdk

        sentry_sdk.capture_exception(exc)
    except Exception:  # pragma: no cover - reporting must never break the response
        logger.warning("Could not report the error to Sentry", exc_info=True)


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        raw = request.query_params.getlist(self.page_query_param)
        if raw and (len(raw) > 1 or not raw[0].isdigit() or int(raw[0]) < 1):
            message = _("page must be a whole number from 1.")
            raise exceptions.ValidationError({self.page_query_param: [message]})
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Any) -> int:
        """A page size that is not a whole number from 1 to max_page_size is a 400, not silently ignored."""
        raw = request.query_params.getlist(self.page_size_query_param)
        if not raw:
            return self.page_size or 20
        if len(raw) > 1 or not raw[0].isdigit() or not 1 <= int(raw[0]) <= self.max_page_size:
            message = _("page_size must be a whole number from 1 to %(max)d.") % {"max": self.max_page_size}
            raise exceptions.ValidationError({self.page_size_query_param: [message]})
        return int(raw[0])

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
            if parameter["name"] == self.page_query_param:
                parameter["schema"].update({"minimum": 1})
        return parameters


# The OpenAI-compatible routes (imagegen/urls.py): whatever refuses a request there answers OpenAI's shape.
GATEWAY_PREFIX = "/v1/"
# The batch a gateway call made, on its answer (also a 502 or 504: the batch exists and goes on).
BATCH_HEADER = "X-ImageGen-Batch"


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", GATEWAY_PREFIX)) or "application/json" in request.headers.get("Accept", "")


def json_error(request: HttpRequest, code: str, message: str, status_code: int) -> JsonResponse:
    """The platform's error shape, or OpenAI's on the gateway's routes (which OpenAI's SDKs read)."""
    if request.path.startswith(GATEWAY_PREFIX):
        return JsonResponse(openai_error(status_code, message, code=code), status=status_code)
    return JsonResponse(error_body(code, message), status=status_code)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return json_error(request, "not_found", _("Not found."), 404)
    from django.views.defaults import page_not_found as html_not_found

    return html_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Requests Django refuses before any view runs: too large, too many fields, bad host."""
    refused = _request_limit_error(exception)
    code, message, status_code = refused or ("bad_request", _("Bad request."), 400)
    if _wants_json(request):
        return json_error(request, code, message, status_code)
    from django.views.defaults import bad_request as html_bad_request

    response = html_bad_request(request, exception)
    response.status_code = status_code
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return json_error(request, "server_error", _("Something went wrong on our side. It has been logged."), 500)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)
