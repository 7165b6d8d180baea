"""The JSON log formatter: context from the request or task, extras, exceptions."""

from __future__ import annotations

import json
import logging

from monitoring.logs import JsonFormatter, context_bind, context_reset


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("imagegen.test", logging.WARNING, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_context_and_extras_appear_on_the_line() -> None:
    token = context_bind(request_id="r1", batch_id="b1")
    try:
        line = json.loads(JsonFormatter().format(_record("hello 世界", duration_ms=12.5)))
    finally:
        context_reset(token)
    assert line["message"] == "hello 世界" and line["level"] == "WARNING"
    assert (line["request_id"], line["batch_id"], line["duration_ms"]) == ("r1", "b1", 12.5)


def test_context_is_gone_after_reset() -> None:
    token = context_bind(request_id="r2")
    context_reset(token)
    assert "request_id" not in json.loads(JsonFormatter().format(_record("x")))


def test_exceptions_are_included() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]
