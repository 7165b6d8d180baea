"""Turning provider HTTP failures into typed ProviderErrors: one mapping shared by every provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from django.conf import settings

from generation.providers.base import ProviderError
from imagegen import http

# Status codes a later attempt can fix; everything else 4xx is the request's own fault.
RETRYABLE_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    408: "timeout",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limited",
}
# Words in a provider's error that mean its moderation refused the prompt or the image.
CONTENT_POLICY_MARKERS = ("content_policy", "moderation", "safety", "content_filtered", "nsfw", "content policy")

MessageReader = Callable[[Any], str]


def provider_timeout() -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.PROVIDER_CONNECT_TIMEOUT, read=settings.PROVIDER_READ_TIMEOUT, write=30.0, pool=10.0
    )


def call(method: str, url: str, *, label: str, read_message: MessageReader, **kwargs: Any) -> httpx.Response:
    """Send one provider request through the HTTP chokepoint; a 2xx comes back, anything else raises."""
    kwargs.setdefault("trusted", True)
    kwargs.setdefault("timeout", provider_timeout())
    try:
        response = http.request(method, url, **kwargs)
    except http.OutboundError as exc:
        raise from_outbound(exc, label=label) from exc
    if response.is_success:
        return response
    raise from_response(response, label=label, read_message=read_message)


def from_outbound(exc: http.OutboundError, *, label: str) -> ProviderError:
    code = {"timeout": "timeout", "connection": "connection_error"}.get(exc.kind, "blocked_url")
    return ProviderError(code, f"{label}: {exc.message}", retryable=exc.retryable)


def from_response(response: httpx.Response, *, label: str, read_message: MessageReader) -> ProviderError:
    """The ProviderError for a non-2xx answer, with the provider's own message when it sent one."""
    status = response.status_code
    message = _message(response, read_message) or response.reason_phrase or f"HTTP {status}"
    if _is_content_policy(message, response) and status < 500:
        return ProviderError("content_filtered", f"{label}: {message}", retryable=False, status_code=status)
    code = STATUS_CODES.get(status, "server_error" if status >= 500 else f"http_{status}")
    return ProviderError(
        code,
        f"{label} answered {status}: {message}",
        retryable=status in RETRYABLE_STATUSES or status >= 500,
        retry_after=http.retry_after_seconds(response),
        status_code=status,
    )


def invalid_response(label: str, detail: str) -> ProviderError:
    """A 2xx answer we cannot read: the server or a proxy garbled it, so another attempt may work."""
    return ProviderError("invalid_response", f"{label} sent a response we cannot read: {detail}", retryable=True)


def json_body(response: httpx.Response, *, label: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise invalid_response(label, "not JSON") from None


def _message(response: httpx.Response, read_message: MessageReader) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    try:
        return str(read_message(body) or "")[:1000]
    except (AttributeError, KeyError, TypeError, IndexError):
        return str(body)[:500]


def _is_content_policy(message: str, response: httpx.Response) -> bool:
    haystack = (message + " " + response.text[:2000]).lower()
    return any(marker in haystack for marker in CONTENT_POLICY_MARKERS)
