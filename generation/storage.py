"""Writing generated images: PNG with their parameters in text chunks, plus a WebP thumbnail."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from generation.providers.base import ProviderError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_AFTER_IHDR = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, 13 data bytes and CRC


class StorageUnavailable(Exception):
    """Writing to storage failed (full disk, store down): the image itself is fine, keep it."""


@dataclass(frozen=True)
class StoredImage:
    image_name: str
    thumbnail_name: str
    content_hash: str
    width: int
    height: int


def store_image(*, data: bytes, base_name: str, text: dict[str, Any]) -> StoredImage:
    """Save `data` as `<base_name>.png` with `text` chunks and a thumbnail; return where they went."""
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ProviderError(
            "invalid_image", "The provider returned data that is not an image.", retryable=True
        ) from exc
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    texts = {
        key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False) for key, value in text.items()
    }
    png_bytes = _png_with_text(data, image, texts)
    width, height = image.size
    image_name, thumbnail_name = _save_pair(base_name, png_bytes, _thumbnail(image))
    return StoredImage(
        image_name=image_name,
        thumbnail_name=thumbnail_name,
        content_hash=hashlib.sha256(png_bytes).hexdigest(),
        width=width,
        height=height,
    )


def _save_pair(base_name: str, png_bytes: bytes, thumbnail_bytes: bytes) -> tuple[str, str]:
    """Write image and thumbnail, or neither: a failed write leaves no partial file behind."""
    wanted = (f"images/{base_name}.png", f"thumbnails/{base_name}.webp")
    saved: list[str] = []
    try:
        saved.append(default_storage.save(wanted[0], ContentFile(png_bytes)))
        saved.append(default_storage.save(wanted[1], ContentFile(thumbnail_bytes)))
    except Exception as exc:  # any storage backend's failure: OSError, botocore errors...
        for name in {*saved, *wanted[len(saved) :]}:
            _delete_quietly(name)
        raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return saved[0], saved[1]


def _delete_quietly(name: str) -> None:
    try:
        if default_storage.exists(name):
            default_storage.delete(name)
    except Exception:  # noqa: S110 - best effort: the sweeper removes what is left
        pass


def _png_with_text(data: bytes, image: Image.Image, texts: dict[str, str]) -> bytes:
    """The image as PNG with `texts` in iTXt chunks.

    A PNG from the provider keeps its pixel data as sent: the chunks are spliced in right after
    IHDR (before the pixels, where every reader finds them), which saves re-compressing it.
    Anything else is encoded as PNG.
    """
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
        chunks = b"".join(_itxt_chunk(key, value) for key, value in texts.items())
        return data[:PNG_AFTER_IHDR] + chunks + data[PNG_AFTER_IHDR:]
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_itxt(key, value)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info, compress_level=3)
    return out.getvalue()


def _itxt_chunk(key: str, value: str) -> bytes:
    # iTXt: keyword, NUL, compression flag and method, empty language tag and translated keyword, UTF-8 text.
    body = key.encode("latin-1")[:79] + b"\0\0\0\0\0" + value.encode("utf-8")
    kind_and_body = b"iTXt" + body
    return struct.pack(">I", len(body)) + kind_and_body + struct.pack(">I", zlib.crc32(kind_and_body))


def _thumbnail(image: Image.Image) -> bytes:
    """A WebP of at most THUMBNAIL_SIZE px; shrinks `image` in place (the PNG is already written).

    reducing_gap=1 first box-averages by the whole factor (cheap), so the final resampling only
    covers what is left: about a tenth of the cost, with no visible difference at this size.
    """
    size = (settings.THUMBNAIL_SIZE, settings.THUMBNAIL_SIZE)
    image.thumbnail(size, Image.Resampling.LANCZOS, reducing_gap=1.0)
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=80, method=2)
    return out.getvalue()


def delete_files(*names: str) -> None:
    for name in names:
        if name:
            default_storage.delete(name)
