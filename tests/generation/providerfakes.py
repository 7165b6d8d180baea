"""Provider test helpers: a fake server every provider points at, fast retries, PNG bytes."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from generation.providers import automatic1111
from tests.fakeserver import FakeServer, Reply, fake_server


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


class InFlight:
    """A fake provider handler answering an OpenAI-style image after 0.3 s; counts concurrent calls and
    remembers the peak (for tests of provider concurrency caps)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = 0
        self.image = base64.b64encode(png_bytes()).decode()

    def __call__(self, _request: object) -> Reply:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.3)
        with self.lock:
            self.now -= 1
        return Reply(200, {"data": [{"b64_json": self.image}]})
