"""The official `openai` Python SDK, unchanged, against the gateway on a live server."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from PIL import Image

from accounts.services import token_create
from generation.models import Batch, BatchSource

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(owner: Any) -> str:
    return token_create(user=owner, name="openai-sdk").secret


def client_for(live_server: Any, api_key: str) -> OpenAI:
    # No retries: a test must see the first answer (and the SDK's retries would hide a 429).
    return OpenAI(base_url=f"{live_server.url}/v1", api_key=api_key, max_retries=0, timeout=60)


def test_images_generate_returns_base64_images(live_server, token, owner):
    client = client_for(live_server, token)
    result = client.images.generate(
        model="local/procedural-v1", prompt="一隻藍色的貓 🐱", n=2, size="256x256", response_format="b64_json"
    )
    assert result.data is not None and len(result.data) == 2
    for image in result.data:
        assert image.b64_json is not None and image.url is None
        decoded = Image.open(io.BytesIO(base64.b64decode(image.b64_json)))
        assert (decoded.format, decoded.size) == ("PNG", (256, 256))
        assert image.revised_prompt == "一隻藍色的貓 🐱"
    assert (result.size, result.output_format) == ("256x256", "png")
    batch = Batch.objects.get(owner=owner)
    assert (batch.source, batch.completed) == (BatchSource.OPENAI_API, 2)


def test_url_images_can_be_fetched_without_the_key(live_server, token):
    result = client_for(live_server, token).images.generate(
        model="procedural-v1", prompt="a red fox", response_format="url"
    )
    assert result.data is not None
    [image] = result.data
    assert image.url is not None and image.b64_json is None
    assert image.url.startswith(f"{live_server.url}/v1/images/files/")
    fetched = httpx.get(image.url)  # no Authorization header
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).format == "PNG"


def test_the_models_list_reads_as_openai_models(live_server, token):
    models = client_for(live_server, token).models.list()
    assert "local/procedural-v1" in [model.id for model in models]
    assert client_for(live_server, token).models.retrieve("local/procedural-v1").owned_by == "local"


def test_bad_input_raises_bad_request_error_naming_the_parameter(live_server, token):
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(live_server, token).images.generate(model="local/procedural-v1", prompt="a red fox", size="1x1")
    assert caught.value.status_code == 400
    assert caught.value.param == "size" and caught.value.code == "unsupported_size"
    assert not Batch.objects.exists()


def test_a_wrong_key_raises_authentication_error(live_server, owner):
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for(live_server, "not-a-platform-token").images.generate(prompt="a red fox")
    assert caught.value.code == "invalid_api_key"


def test_the_rate_limit_raises_rate_limit_error(live_server, token, settings):
    settings.API_RATE_LIMIT = "1/min"
    client = client_for(live_server, token)
    client.images.generate(prompt="a red fox", size="256x256")
    with pytest.raises(openai.RateLimitError) as caught:
        client.images.generate(prompt="a red fox", size="256x256")
    assert caught.value.code == "rate_limit_exceeded"
    assert int(caught.value.response.headers["retry-after"]) > 0
