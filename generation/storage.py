"""Writing generated images: PNG with their parameters in text chunks, plus a WebP thumbnail."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from generation.providers.base import ProviderError


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
    chunks = PngImagePlugin.PngInfo()
    for key, value in text.items():
        chunks.add_itxt(key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    png = io.BytesIO()
    image.save(png, format="PNG", pnginfo=chunks, compress_level=3)
    png_bytes = png.getvalue()
    image_name = default_storage.save(f"images/{base_name}.png", ContentFile(png_bytes))
    thumbnail_name = default_storage.save(f"thumbnails/{base_name}.webp", ContentFile(_thumbnail(image)))
    return StoredImage(
        image_name=image_name,
        thumbnail_name=thumbnail_name,
        content_hash=hashlib.sha256(png_bytes).hexdigest(),
        width=image.width,
        height=image.height,
    )


def _thumbnail(image: Image.Image) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((settings.THUMBNAIL_SIZE, settings.THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, format="WEBP", quality=80, method=4)
    return out.getvalue()


def delete_files(*names: str) -> None:
    for name in names:
        if name:
            default_storage.delete(name)
