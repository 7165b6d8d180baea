"""Stored images: PNG with parameters in text chunks (pixels kept as sent), and a WebP thumbnail."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from generation.providers.base import ProviderError
from generation.storage import store_image

TEXT = {"prompt": "紅色夕陽 🌅", "seed": "7", "parameters": {"steps": 30}}


def encoded(fmt: str, size: tuple[int, int] = (300, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format=fmt)
    return out.getvalue()


def read(name: str) -> Image.Image:
    with default_storage.open(name) as file:
        image = Image.open(io.BytesIO(file.read()))
        image.load()
        return image


def test_a_png_keeps_its_pixel_data_and_gains_readable_text_chunks(db):
    original = encoded("PNG")
    stored = store_image(data=original, base_name="b/g-1", text=TEXT)
    image = read(stored.image_name)
    assert image.info["prompt"] == "紅色夕陽 🌅"
    assert image.info["parameters"] == '{"steps": 30}'
    with default_storage.open(stored.image_name) as file:
        assert original[33:] in file.read()  # pixels and every later chunk as the provider sent them
    assert (stored.width, stored.height) == (300, 200)


def test_a_jpeg_is_stored_as_png_with_text_chunks(db):
    stored = store_image(data=encoded("JPEG"), base_name="b/g-2", text=TEXT)
    image = read(stored.image_name)
    assert image.format == "PNG" and image.info["seed"] == "7"


def test_the_thumbnail_is_webp_within_the_thumbnail_size(db):
    stored = store_image(data=encoded("PNG", (1024, 512)), base_name="b/g-3", text=TEXT)
    thumbnail = read(stored.thumbnail_name)
    assert thumbnail.format == "WEBP" and thumbnail.size == (256, 128)


def test_bytes_that_are_not_an_image_are_a_retryable_invalid_image_error(db):
    with pytest.raises(ProviderError) as caught:
        store_image(data=b"<html>oops</html>", base_name="b/g-4", text=TEXT)
    assert caught.value.code == "invalid_image" and caught.value.retryable
