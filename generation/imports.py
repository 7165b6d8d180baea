"""Reading imported prompts (CSV, JSON array, JSON Lines or plain lines) into rows; a bad file is refused whole.

CSV needs a header row. The columns `prompt`, `negative_prompt`, `seed`, `width`, `height` and
`images` are the row's own settings; any other column (or any other key of a JSON object) is a
variable: `{column}` in the row's prompt and negative prompt is replaced by that row's value before
templates are expanded (a `{a|b}` group that names no column is left to the template).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from django.conf import settings
from django.utils.translation import gettext as _

from generation.parameters import PromptItem
from generation.prompts import split_lines
from imagegen.errors import ValidationFailed

FIELDS = ("prompt", "negative_prompt", "seed", "width", "height", "images")
NUMBER_FIELDS = ("seed", "width", "height", "images")
MAX_SEED = 2**32 - 1
MAX_SIDE = 16_384
MAX_ROW_ERRORS = 20  # listed in one refusal; enough to fix a file, not a second copy of it
PLACEHOLDER = re.compile(r"\{([^{}|$]+)\}")
FORMATS = {"csv": "csv", "json": "json", "jsonl": "jsonl", "ndjson": "jsonl", "txt": "text"}


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str


@dataclass(frozen=True)
class ImportedPrompts:
    """A file's prompts: plain `lines` (a .txt file) or `items` with their own settings."""

    lines: list[str]
    items: list[PromptItem]


def import_file(data: bytes, *, filename: str) -> ImportedPrompts:
    """Read an uploaded file by its extension (.txt, .csv, .json, .jsonl/.ndjson)."""
    text = _decode(data)
    kind = import_format(filename, text)
    if kind == "text":
        return ImportedPrompts(lines=split_lines(text), items=[])
    if kind == "csv":
        return ImportedPrompts(lines=[], items=_csv_items(text))
    if kind == "json":
        return ImportedPrompts(lines=[], items=check_items(_json(text, row=1)))
    return ImportedPrompts(lines=[], items=_jsonl_items(text))


def import_format(filename: str, text: str = "") -> str:
    """`text`, `csv`, `json` or `jsonl` from the extension; a name without one is sniffed."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in FORMATS:
        return FORMATS[extension]
    if extension:
        _refuse_file(_("Import a .txt, .csv, .json or .jsonl file."), code="unsupported_import")
    start = text.lstrip()[:1]
    return {"[": "json", "{": "jsonl"}.get(start, "text")


def check_items(raw: Any) -> list[PromptItem]:
    """The API's `items` (or a JSON file's array): each an object with at least a prompt."""
    if not isinstance(raw, list):
        _refuse_file(_("The items must be a list of objects with a prompt."))
    _check_row_count(len(raw))
    return _collect((index, value) for index, value in enumerate(raw, start=1))


def prompts_and_items_message() -> str:
    return _("Type prompts or import rows with their own settings (CSV, JSON), not both.")


def refuse_prompts_and_items() -> NoReturn:
    message = prompts_and_items_message()
    raise ValidationFailed(message, code="prompts_and_items", details={"items": [message]})


def _decode(data: bytes) -> str:
    if len(data) > settings.MAX_UPLOAD_BYTES:
        _refuse_file(_("The file is larger than 2 MB."), code="file_too_large")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        _refuse_file(_("The file is not UTF-8 text."))
    if "\x00" in text:
        _refuse_file(_("The file contains NUL bytes; it is not a text file."))
    return text


def _csv_items(text: str) -> list[PromptItem]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if "prompt" not in header:
            _refuse_file(_("The first row of a CSV file names its columns, and one of them must be “prompt”."))
        if len(set(header)) != len(header):
            _refuse_file(_("The CSV header names a column twice."))
        rows = [(number, cells) for number, cells in enumerate(reader, start=2) if any(c.strip() for c in cells)]
    except csv.Error as error:
        _refuse_file(_("The CSV file cannot be read: %(problem)s.") % {"problem": error})
    _check_row_count(len(rows))
    errors = [RowError(n, "", _("This row has more cells than the header.")) for n, c in rows if len(c) > len(header)]
    if errors:
        refuse_rows(errors)
    return _collect((number, dict(zip(header, cells, strict=False))) for number, cells in rows)


def _jsonl_items(text: str) -> list[PromptItem]:
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    _check_row_count(len(lines))
    return _collect((number, _json(line, row=number)) for number, line in lines)


def _json(text: str, *, row: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        message = _("This is not valid JSON (line %(line)d, column %(column)d).")
        refuse_rows([RowError(row + error.lineno - 1, "", message % {"line": error.lineno, "column": error.colno})])


def _check_row_count(count: int) -> None:
    if count > settings.MAX_PROMPTS_PER_BATCH:
        message = _("An import holds at most %(max)d rows; this one has %(count)d.")
        _refuse_file(message % {"max": settings.MAX_PROMPTS_PER_BATCH, "count": count}, code="too_many_prompts")


def _collect(rows: Any) -> list[PromptItem]:
    items: list[PromptItem] = []
    errors: list[RowError] = []
    for number, raw in rows:
        item = _item(number, raw, errors)
        if item is not None:
            items.append(item)
    if errors:
        refuse_rows(errors)
    if not items:
        _refuse_file(_("The file has no rows with a prompt."), code="no_prompts")
    return items


def _item(row: int, raw: Any, errors: list[RowError]) -> PromptItem | None:
    if not isinstance(raw, dict):
        errors.append(RowError(row, "", _("Each row must be an object with a prompt.")))
        return None
    variables = {str(k).strip(): str(_text(v)) for k, v in raw.items() if k not in FIELDS and _text(v) is not None}
    found = len(errors)
    prompt = _fill(_text(raw.get("prompt")) or "", variables)
    if not prompt:
        errors.append(RowError(row, "prompt", _("Enter a prompt.")))
    negative = _text(raw.get("negative_prompt"))
    numbers = {name: _number(row, name, raw.get(name), errors) for name in NUMBER_FIELDS}
    if len(errors) > found:
        return None
    return PromptItem(prompt=prompt, negative_prompt=None if not negative else _fill(negative, variables), **numbers)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip()


def _fill(text: str, variables: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: variables.get(m.group(1).strip(), m.group(0)), text)


LIMITS = {
    "seed": (0, MAX_SEED),
    "width": (1, MAX_SIDE),
    "height": (1, MAX_SIDE),
}


def _number(row: int, name: str, value: Any, errors: list[RowError]) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    low, high = LIMITS.get(name, (1, settings.MAX_IMAGES_PER_PROMPT))
    number = value if isinstance(value, int) and not isinstance(value, bool) else _whole(value)
    if number is None or not low <= number <= high:
        message = _("Must be a whole number from %(low)d to %(high)d.") % {"low": low, "high": high}
        errors.append(RowError(row, name, message))
        return None
    return number


def _whole(value: Any) -> int | None:
    text = str(value).strip() if isinstance(value, str | float) else ""
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _refuse_file(message: str, *, code: str = "invalid_import") -> Any:
    raise ValidationFailed(message, code=code, details={"rows": [asdict(RowError(0, "file", message))]})


def refuse_rows(errors: list[RowError]) -> Any:
    first = errors[0]
    message = _("Nothing was imported; rows with problems: %(count)d. Row %(row)d: %(problem)s") % {
        "count": len({e.row for e in errors}),
        "row": first.row,
        "problem": f"{first.field}: {first.message}" if first.field else first.message,
    }
    rows = [asdict(error) for error in errors[:MAX_ROW_ERRORS]]
    raise ValidationFailed(message, code="invalid_import", details={"rows": rows})
