"""The API's JSON parser: DRF's, with a nesting limit so no body can exhaust the stack."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

# JSON nested deeper than any request of ours needs is refused before it can exhaust the stack.
MAX_JSON_DEPTH = 32


class JSONBody(dict[str, Any]):
    """A request body that came as a JSON object: its fields hold JSON types (see imagegen.fields)."""


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested more than MAX_JSON_DEPTH deep with a 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
            too_deep = True
        else:
            too_deep = _depth_exceeds(data, MAX_JSON_DEPTH)
        if too_deep:
            raise exceptions.ParseError(_("JSON nested more than %(max)d levels deep.") % {"max": MAX_JSON_DEPTH})
        return JSONBody(data) if isinstance(data, dict) else data


def _depth_exceeds(data: Any, limit: int) -> bool:
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
    return False
