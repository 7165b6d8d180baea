"""Structured logging: one JSON object per line, carrying the request or task context."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from monitoring.sentry import scrub_text

# Set by the request middleware and the task signal handlers; read by every log record.
log_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


def context_bind(**values: Any) -> Token[dict[str, Any] | None]:
    """Add values to the current log context; pass the token to `context_reset` when done."""
    return log_context.set({**(log_context.get() or {}), **values})


def context_reset(token: Token[dict[str, Any] | None]) -> None:
    log_context.reset(token)


class JsonFormatter(logging.Formatter):
    """Render a record as one line of JSON: time, level, logger, message, context, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(log_context.get() or {})
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return scrub_text(json.dumps(entry, ensure_ascii=False, default=str))


class PlainFormatter(logging.Formatter):
    """The standard one-line format for reading by eye, with credentials filtered like the JSON one."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record))
