"""Keyset (cursor) pagination: a page costs an index range scan from where the last page ended.

An offset page must skip, and a page-number paginator must count, every row before it; a
keyset page instead continues after the last row it returned (`WHERE (a, b) < (x, y) ORDER BY
a DESC, b DESC LIMIT n`), so page 500 costs what page 1 costs. The cursor is opaque to clients:
URL-safe base64 of the last row's ordering values.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NoReturn, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, Q, QuerySet
from django.utils.translation import gettext as _

from imagegen.errors import ValidationFailed

T = TypeVar("T", bound=Model)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class KeysetPage(Generic[T]):
    items: list[T]
    next_cursor: str | None
    total: int | None = None


def _value(item: Model, path: str) -> Any:
    value: Any = item
    for part in path.split("__"):
        value = getattr(value, part)
    return value


def encode_cursor(item: Model, ordering: Sequence[str]) -> str:
    """The cursor that continues after `item`."""
    return _encode([_value(item, name.lstrip("-")) for name in ordering])


def _encode(values: list[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v if isinstance(v, int | float) else str(v) for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The values in a cursor; anything that is not one of ours is a 400 `invalid_cursor`."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        values = None
    if not isinstance(values, list) or len(values) != length:
        invalid_cursor()
    return values


def invalid_cursor() -> NoReturn:
    raise ValidationFailed(
        _("This page link is not valid; start again from the first page."),
        code="invalid_cursor",
        details={"cursor": [_("Not a cursor from a previous page.")]},
    )


def after(ordering: Sequence[str], values: list[Any]) -> Q:
    """Rows strictly after `values` in `ordering`, written so the first column bounds the index range."""
    fields = [(name.lstrip("-"), name.startswith("-")) for name in ordering]
    first, first_descending = fields[0]
    bound = Q(**{f"{first}__{'lte' if first_descending else 'gte'}": values[0]})
    later = Q()
    for index, (name, descending) in enumerate(fields):
        equal = {fields[j][0]: values[j] for j in range(index)}
        later |= Q(**equal, **{f"{name}__{'lt' if descending else 'gt'}": values[index]})
    return bound & later


def page_size_from(raw: str | None, default: int = DEFAULT_PAGE_SIZE) -> int:
    if not raw:
        return default
    try:
        size = int(raw)
    except ValueError:
        raise ValidationFailed(
            _("page_size must be a whole number."), details={"page_size": [_("A whole number is required.")]}
        ) from None
    return max(1, min(size, MAX_PAGE_SIZE))


def page_number_from(raw: str | None) -> int:
    """A 1-based page number (for lists whose positions are dense, like a batch's images)."""
    if not raw:
        return 1
    try:
        return max(1, int(raw))
    except ValueError:
        raise ValidationFailed(
            _("page must be a whole number."), details={"page": [_("A whole number is required.")]}
        ) from None


def keyset_page(
    queryset: QuerySet[T],
    *,
    ordering: Sequence[str],
    cursor: str | None,
    size: int,
    total: Callable[[], int | None] | None = None,
) -> KeysetPage[T]:
    """One page of `queryset` in `ordering` (which must end in a unique column), after `cursor`."""
    rows = queryset.order_by(*ordering)
    if cursor:
        values = decode_cursor(cursor, len(ordering))
        try:
            items = list(rows.filter(after(ordering, values))[: size + 1])
        except (ValueError, TypeError, DjangoValidationError):  # values of the wrong type for their column
            invalid_cursor()
    else:
        items = list(rows[: size + 1])
    more = len(items) > size
    items = items[:size]
    next_cursor = encode_cursor(items[-1], ordering) if more else None
    return KeysetPage(items=items, next_cursor=next_cursor, total=total() if total else None)
