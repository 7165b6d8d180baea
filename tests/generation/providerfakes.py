"""Provider test helpers: a fake server every provider points at, fast retries, PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from generation.providers import automatic1111
from tests.fakeserver import FakeServer, fake_server


def png_bytes(colour: str = "red", size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def server(settings: Any) -> Iterator[FakeServer]:
    """A fake remote every provider is configured against."""
    with fake_server() as fake:
        settings.OPENAI_API_KEY = "sk-test-operator"
        settings.OPENAI_BASE_URL = f"{fake.url}/v1"
        settings.STABILITY_API_KEY = "sk-stability"
        settings.STABILITY_BASE_URL = fake.url
        settings.A1111_BASE_URL = fake.url
        settings.REPLICATE_API_TOKEN = "r8_test"
        settings.REPLICATE_BASE_URL = fake.url
        settings.REPLICATE_POLL_SECONDS = 0.05
        settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
        settings.PROVIDER_READ_TIMEOUT = 1.0
        settings.GENERATION_RETRY_BASE_SECONDS = 0.01
        settings.GENERATION_RETRY_INLINE_SECONDS = 5
        automatic1111.clear_cache()
        yield fake
    automatic1111.clear_cache()
