"""Typed application errors raised by services and rendered in the platform's one error shape."""

from __future__ import annotations

from typing import Any

from django.http import Http404


class ApplicationError(Exception):
    """A failure the caller can act on: rendered as `{"error": {code, message, details}}`."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}


class ValidationFailed(ApplicationError):
    default_code = "validation_error"


class NotFound(ApplicationError, Http404):
    """Also an Http404, so a portal view that lets it through shows the 404 page."""

    status_code = 404
    default_code = "not_found"


class Forbidden(ApplicationError):
    """The caller is known but may not do this (never used to hide another user's object: that is a 404)."""

    status_code = 403
    default_code = "permission_denied"


class Conflict(ApplicationError):
    status_code = 409
    default_code = "conflict"


class TooManyRequests(ApplicationError):
    status_code = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
