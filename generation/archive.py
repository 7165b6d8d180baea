"""Downloads: images with manifest.csv and manifest.json in one ZIP, streamed without holding it in memory.

Rows are read with `.iterator()`, files from storage in chunks, and the ZIP is written as it is
sent, so a 2 000-image batch costs the server one chunk at a time whatever its size. Images that
failed (or whose file is gone) are listed in the manifests with an empty `file`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from stream_zip import ZIP_64, stream_zip

from generation.models import Generation, GenerationStatus
from imagegen.errors import ValidationFailed

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
ROWS_PER_QUERY = 200
MANIFEST_FIELDS = (
    "file", "prompt", "negative_prompt", "seed", "width", "height", "provider", "model", "status", "cost_usd",
    "id", "batch_id",
)  # fmt: skip
ROW_FIELDS = (
    "id", "batch_id", "position", "prompt", "negative_prompt", "seed", "width", "height", "provider", "model",
    "status", "cost_usd", "image", "finished_at",
)  # fmt: skip
UNSAFE_IN_FILENAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
FILE_MODE = 0o100644


def archive_response(generations: QuerySet[Generation], filename: str) -> StreamingHttpResponse:
    """A streamed ZIP of `generations` (already scoped to the user) named `filename`."""
    response = StreamingHttpResponse(archive_chunks(generations), content_type="application/zip")
    response["Content-Disposition"] = attachment_header(filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def archive_chunks(generations: QuerySet[Generation]) -> Iterator[bytes]:
    """The ZIP's bytes: every image under images/, then manifest.csv and manifest.json."""
    # Only the columns the ZIP needs: a joined batch would parse its (large) parameters once per row.
    rows = generations.select_related(None).only(*ROW_FIELDS)
    now = timezone.now()
    members = _members(rows, now)
    return iter(stream_zip(members, chunk_size=CHUNK_BYTES, get_compressobj=_fast_deflate))


def download_status(value: str) -> str:
    """The `?status=` of a download: empty (every image) or one generation status."""
    if value and value not in GenerationStatus.values:
        message = _("status must be one of: %(statuses)s.") % {"statuses": ", ".join(GenerationStatus.values)}
        raise ValidationFailed(message, details={"status": [message]})
    return value


def selection_filename() -> str:
    """The name of a ZIP of hand-picked images, which have no batch name to go by."""
    return f"imagegen-{timezone.localtime():%Y%m%d-%H%M}.zip"


def attachment_header(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real one (any language) as RFC 5987 `filename*`."""
    name = UNSAFE_IN_FILENAME.sub("_", filename).strip(" .") or "images.zip"
    name = name if name.lower().endswith(".zip") else f"{name}.zip"
    ascii_stem = name[:-4].encode("ascii", "ignore").decode().strip(" ._-") or "images"
    ascii_name = f"{ascii_stem}.zip"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _fast_deflate() -> Any:
    # Images are PNG, already compressed: the fastest level saves CPU and still shrinks the manifests.
    return zlib.compressobj(1, zlib.DEFLATED, -15)


def _members(rows: QuerySet[Generation], now: datetime) -> Iterator[tuple[str, datetime, int, Any, Iterable[bytes]]]:
    for index, generation in enumerate(rows.iterator(chunk_size=ROWS_PER_QUERY), start=1):
        name = _member_name(generation, index)
        if name:
            yield name, generation.finished_at or now, FILE_MODE, ZIP_64, _file_chunks(str(generation.image.name))
    yield "manifest.csv", now, FILE_MODE, ZIP_64, _manifest_csv(rows)
    yield "manifest.json", now, FILE_MODE, ZIP_64, _manifest_json(rows)


def _member_name(generation: Generation, index: int) -> str:
    """Where the image sits in the ZIP, or "" when there is no file to put there."""
    stored = generation.image.name if generation.image else ""
    if not stored:
        return ""
    extension = stored[stored.rfind(".") :] if "." in stored.rsplit("/", 1)[-1] else ".png"
    return f"images/{index:05d}-{generation.pk.hex[:8]}{extension}"


def _file_chunks(name: str) -> Iterator[bytes]:
    try:
        chunks = _open_chunks(name)
    except Exception:  # a lost file must not cut off the rest of a download already under way
        logger.warning("Image file %s could not be opened for a download; it is left empty", name, exc_info=True)
        return
    yield from chunks


def _open_chunks(name: str) -> Iterator[bytes]:
    stored = default_storage.open(name, "rb")
    remote = getattr(stored, "obj", None)
    if remote is not None:
        # django-storages' S3File would first copy the whole object into memory: read its body as a stream.
        body = remote.get()["Body"]
        return iter(body.iter_chunks(CHUNK_BYTES))
    return _local_chunks(stored)


def _local_chunks(stored: Any) -> Iterator[bytes]:
    with stored:
        while chunk := stored.read(CHUNK_BYTES):
            yield chunk


def _manifest_rows(rows: QuerySet[Generation]) -> Iterator[dict[str, Any]]:
    for index, generation in enumerate(rows.iterator(chunk_size=ROWS_PER_QUERY), start=1):
        yield {
            "file": _member_name(generation, index),
            "prompt": generation.prompt,
            "negative_prompt": generation.negative_prompt,
            "seed": generation.seed,
            "width": generation.width,
            "height": generation.height,
            "provider": generation.provider,
            "model": generation.model,
            "status": generation.status,
            "cost_usd": None if generation.cost_usd is None else str(Decimal(generation.cost_usd)),
            "id": str(generation.pk),
            "batch_id": str(generation.batch_id),
        }


def _manifest_csv(rows: QuerySet[Generation]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS)
    buffer.write("\ufeff")  # spreadsheet programs read UTF-8 (Chinese prompts) only with the BOM
    writer.writeheader()
    for row in _manifest_rows(rows):
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
        if buffer.tell() >= CHUNK_BYTES:
            yield _drain(buffer)
    yield _drain(buffer)


def _manifest_json(rows: QuerySet[Generation]) -> Iterator[bytes]:
    separator = "\n  "
    yield b"["
    for row in _manifest_rows(rows):
        yield (separator + json.dumps(row, ensure_ascii=False)).encode()
        separator = ",\n  "
    yield b"\n]\n"


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data
