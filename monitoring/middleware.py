"""Request middleware: an id per request, timing into the metrics, one JSON log line, ids in errors."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from monitoring.logs import context_bind, context_reset
from monitoring.request_metrics import recorder

logger = logging.getLogger("imagegen.request")

# A caller's own id is kept only when it is short and plain, so it is safe to log.
ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


class RequestMonitoringMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if ACCEPTED_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = context_bind(request_id=request_id)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if response.status_code >= 400:
                add_request_id_to_error(response, request_id)
            duration_ms = (time.perf_counter() - started) * 1000
            self.measure(request, response, duration_ms)
        finally:
            context_reset(token)
        return response

    def measure(self, request: HttpRequest, response: HttpResponse, duration_ms: float) -> None:
        route = self.route_of(request)
        method = metric_method(request.method)
        recorder.record(route=route, method=method, status=response.status_code, duration_ms=duration_ms)
        logger.info(
            "%s %s %s",
            method,
            request.path,
            response.status_code,
            extra={
                "route": route,
                "method": method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 2),
                "user_id": user_id_of(request),
                # The real client behind a trusted proxy (imagegen.proxy rewrote REMOTE_ADDR).
                "client_ip": request.META.get("REMOTE_ADDR"),
            },
        )

    def route_of(self, request: HttpRequest) -> str:
        match = getattr(request, "resolver_match", None)
        if match is not None:
            return match.view_name or match.route
        return "static" if request.path.startswith(self.static_prefix) else "unmatched"


def metric_method(method: str | None) -> str:
    """The method as a metric label: a made-up method name would add a row per name, for ever."""
    upper = (method or "").upper()
    return upper if upper in KNOWN_METHODS else "OTHER"


def user_id_of(request: HttpRequest) -> int | None:
    """The user id when authentication already ran; never loads the session just for a log line."""
    user = getattr(request, "user", None)
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    return user.pk if user.is_authenticated else None


def add_request_id_to_error(response: HttpResponse, request_id: str) -> None:
    """Put the request id inside the platform's JSON error shape, so a user can quote it."""
    if response.streaming or not response.get("Content-Type", "").startswith("application/json"):
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body["error"]["request_id"] = request_id
        response.content = json.dumps(body, ensure_ascii=False).encode()
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
