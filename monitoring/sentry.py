"""Sentry set-up: Django and logging integrations, and scrubbing so no password or token leaves."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, cast

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

if TYPE_CHECKING:
    from sentry_sdk._types import Event

FILTERED = "[Filtered]"
# Any key containing one of these words is dropped, wherever it sits in the event.
SECRET_KEY_PARTS = ("password", "passwd", "secret", "token", "authorization", "api_key", "apikey", "dsn", "cookie")
# Values that are credentials whatever their key is called.
SECRET_VALUE = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")
# Credentials recognisable by their shape alone: our API tokens (ig_<prefix>_<secret>) and the
# providers' keys (OpenAI and Stability sk-..., Replicate r8_...).
SECRET_SHAPES = re.compile(r"\b(?:ig_[0-9a-f]{12}_[A-Za-z0-9_-]{16,}|sk-[A-Za-z0-9_-]{16,}|r8_[A-Za-z0-9]{16,})")
# `name=value` pairs in query strings and form bodies whose name says they are secret.
SECRET_JSON_PAIR = re.compile(
    r'(?i)("[a-z0-9_-]*(?:password|passwd|secret|token|api_key|apikey|otp)[a-z0-9_-]*\\?"\s*:\s*\\?")[^"\\]*'
)
# A password-reset link carries a token that lets anyone set the account's password.
RESET_LINK = re.compile(r"(/password/reset/)[^/\s\"'?]+/[^/\s\"'?]+/")
SECRET_PAIR = re.compile(
    r"(?i)([?&;\s\"']?[a-z0-9_-]*(?:password|passwd|secret|token|api_key|apikey|otp)[a-z0-9_-]*=)[^&;\s\"']*"
)


def sentry_init(*, dsn: str, environment: str, release: str | None, traces_sample_rate: float = 0.0) -> None:
    """Report unhandled errors (web and django-q2 workers, whose failures are logged) to Sentry."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[
            DjangoIntegration(),
            # django-q2 has no Sentry integration; it logs failed tasks at ERROR, which become events.
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, "dsn", "secret_key"], recursive=True),
        # Scrubbing at the source: request bodies (which may hold a password that failed to parse)
        # and stack locals (which hold the token being checked) never leave the process at all.
        max_request_body_size="never",
        include_local_variables=False,
        before_send=scrub_event,
        traces_sample_rate=traces_sample_rate,
    )


def scrub_event(event: Event, hint: dict[str, Any]) -> Event:
    return cast("Event", scrub(event))


def scrub(value: Any) -> Any:
    """Replace secret-looking keys and credential-looking strings, recursively."""
    if isinstance(value, dict):
        return {key: FILTERED if _secret_key(key) else scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        # Sentry sends headers as [name, value] pairs in some places.
        if len(value) == 2 and isinstance(value[0], str) and _secret_key(value[0]):
            return [value[0], FILTERED]
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def scrub_text(text: str) -> str:
    """A string with bearer values, token-shaped values and secret `name=value` pairs filtered."""
    text = SECRET_VALUE.sub(lambda match: f"{match.group(1)} {FILTERED}", text)
    text = SECRET_SHAPES.sub(FILTERED, text)
    text = SECRET_JSON_PAIR.sub(lambda match: f"{match.group(1)}{FILTERED}", text)
    text = RESET_LINK.sub(lambda match: f"{match.group(1)}{FILTERED}/{FILTERED}/", text)
    return SECRET_PAIR.sub(lambda match: f"{match.group(1)}{FILTERED}", text)


def _secret_key(key: object) -> bool:
    return isinstance(key, str) and any(part in key.lower() for part in SECRET_KEY_PARTS)
