"""The OpenAI-compatible routes under /v1/ through Django's test client: shapes, auth, limits, links.

The database is transactional: the gateway waits for its batch after the commit, which is when the
synchronous test queue renders it.
"""

from __future__ import annotations

import base64
import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core import signing
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from generation import gateway, keys
from generation.models import Batch, BatchSource, BatchStatus
from generation.parameters import BatchParameters
from tests.conftest import api_client_for
from tests.fakeserver import Reply
from tests.generation.providerfakes import server

__all__ = ["server"]

pytestmark = pytest.mark.django_db(transaction=True)

GENERATIONS = "/v1/images/generations"


def error_of(response: Any) -> dict[str, Any]:
    """OpenAI's error object; the platform's request id is the only field added to it."""
    error = dict(response.json()["error"])
    error.pop("request_id", None)
    assert set(error) == {"message", "type", "param", "code"}, error
    return error


def generate(api: APIClient, key: str | None = None, **body: Any) -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(GENERATIONS, {"prompt": "a red fox", **body}, format="json", **headers)


def test_generating_answers_openais_shape_with_decodable_images(api, owner):
    response = generate(api, model="local/procedural-v1", n=2, size="256x256", response_format="b64_json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"created", "data", "size", "output_format"}
    assert (body["size"], body["output_format"]) == ("256x256", "png")
    assert [set(item) for item in body["data"]] == [{"b64_json", "revised_prompt"}] * 2
    for item in body["data"]:
        image = Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))
        assert (image.format, image.size) == ("PNG", (256, 256))
    batch = Batch.objects.get(owner=owner)
    assert response["X-ImageGen-Batch"] == str(batch.pk)
    assert (batch.source, batch.status, batch.total) == (BatchSource.OPENAI_API, BatchStatus.COMPLETED, 2)


def test_each_call_is_a_batch_in_the_users_history(api):
    generate(api, output_format="jpeg", output_compression=70)
    [listed] = api.get("/api/v1/batches/").json()["results"]
    assert listed["source"] == "openai-api"
    parameters = BatchParameters.from_json(listed["parameters"])
    assert (parameters.output_format, parameters.output_compression) == ("jpeg", 70)


def test_url_answers_link_to_the_image_without_the_bearer_token(api):
    body = generate(api, response_format="url").json()
    [item] = body["data"]
    assert set(item) == {"url", "revised_prompt"}
    assert item["url"].startswith("http://testserver/v1/images/files/")
    fetched = Client().get(item["url"])
    assert fetched.status_code == 200 and fetched["Content-Type"] == "image/png"
    content = b"".join(fetched.streaming_content)  # type: ignore[attr-defined]
    assert Image.open(io.BytesIO(content)).format == "PNG"


def test_an_expired_or_tampered_link_is_refused_in_openais_shape(api, settings, monkeypatch):
    url = generate(api, response_format="url").json()["data"][0]["url"]
    tampered = Client().get(url[:-3] + "abc")
    assert tampered.status_code == 404 and error_of(tampered)["type"] == "invalid_request_error"
    settings.GATEWAY_URL_TTL_SECONDS = 60
    later = signing.b62_decode(url.rsplit(":", 2)[1]) + 61
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    expired = Client().get(url)
    assert expired.status_code == 403 and error_of(expired)["code"] == "url_expired"


def test_on_an_object_store_the_link_redirects_to_a_presigned_url(api, object_store, settings):
    settings.STORAGE_PRESIGNED_URLS = True
    body = generate(api, response_format="url").json()
    redirect = Client().get(body["data"][0]["url"])
    assert redirect.status_code == 302
    location = redirect["Location"]
    assert location.startswith(f"{object_store.endpoint}/{object_store.bucket}/images/")
    assert "X-Amz-Signature" in parse_qs(urlsplit(location).query)
    fetched = httpx.get(location)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
    b64 = generate(api).json()["data"][0]["b64_json"]  # base64 answers read the bucket too
    assert base64.b64decode(b64).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"n": 11}, "n", "integer_above_max_value"),
        ({"n": 0}, "n", "integer_below_min_value"),
        ({"size": "100x100"}, "size", "unsupported_size"),
        ({"model": "nope"}, "model", "model_not_found"),
        ({"response_format": "gif"}, "response_format", "invalid_value"),
        ({"colour": "red"}, "colour", "unknown_parameter"),
        ({"prompt": ""}, "prompt", "empty_string"),
        ({"prompt": "a red\x00fox"}, "prompt", "invalid_value"),
        ({"n": 2.5}, "n", "invalid_type"),
        ({"model": 7}, "model", "invalid_type"),
        ({"stream": True}, "stream", "unsupported_parameter"),
        ({"quality": "hd"}, "quality", "unsupported_value"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(api, body, param, code):
    response = generate(api, **body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert not Batch.objects.exists()


def test_a_body_that_is_not_json_is_a_400(api):
    response = api.post(GENERATIONS, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_request_error"


def test_an_ambiguous_model_is_a_400_listing_the_choices(api, server):
    server.route("GET", "/sdapi/v1/sd-models", Reply(200, [{"title": "core", "model_name": "core"}]))
    response = generate(api, model="core")
    error = error_of(response)
    assert response.status_code == 400 and (error["param"], error["code"]) == ("model", "ambiguous_model")
    assert "automatic1111/core" in error["message"] and "stability/core" in error["message"]


def test_without_a_token_it_is_a_401_invalid_api_key(anon_api, owner):
    response = generate(anon_api)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "invalid_api_key"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert error_of(generate(bad))["code"] == "invalid_api_key"
    session = APIClient()
    session.force_login(owner)  # the portal's session is not an API key
    assert generate(session).status_code == 401
    assert not Batch.objects.exists()


def test_a_wrong_method_is_a_405_in_openais_shape(api):
    response = api.get(GENERATIONS)
    assert response.status_code == 405 and error_of(response)["type"] == "invalid_request_error"


def test_an_unknown_path_under_v1_is_a_404_in_openais_shape(api):
    response = api.post("/v1/chat/completions", {}, format="json")
    assert response.status_code == 404
    assert error_of(response)["message"] == "Invalid URL (POST /v1/chat/completions)."


def test_the_gateway_shares_the_api_rate_limit_and_answers_429_with_retry_after(api, settings):
    settings.API_RATE_LIMIT = "2/min"
    assert api.get("/api/v1/usage/").status_code == 200  # the same named limit as /api/v1
    assert generate(api).status_code == 200
    response = generate(api)
    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 60
    error = error_of(response)
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert Batch.objects.count() == 1


def test_an_exhausted_quota_is_a_429_insufficient_quota_not_to_be_retried(api, settings):
    settings.DEFAULT_DAILY_IMAGE_QUOTA = 1
    response = generate(api, n=2)
    assert response.status_code == 429 and response["x-should-retry"] == "false"
    error = error_of(response)
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")


def test_a_provider_failure_is_a_502_server_error_not_to_be_retried(api, owner, settings):
    settings.LOCAL_PROVIDER_FAIL_RATE = 1.0
    response = generate(api)
    assert response.status_code == 502 and response["x-should-retry"] == "false"
    assert error_of(response)["type"] == "server_error"
    assert response["X-ImageGen-Batch"] == str(Batch.objects.get(owner=owner).pk)


def test_a_call_that_outlasts_the_timeout_is_a_504_and_its_batch_goes_on(api, owner, settings, real_queue):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.2
    settings.GATEWAY_POLL_SECONDS = 0.05
    response = generate(api, n=3)
    assert response.status_code == 504 and response["x-should-retry"] == "false"
    error = error_of(response)
    assert (error["type"], error["code"]) == ("server_error", "timeout")
    batch = Batch.objects.get(owner=owner)
    assert response["X-ImageGen-Batch"] == str(batch.pk) and str(batch.pk) in error["message"]
    assert batch.is_active and batch.total == 3  # the images are still being made


def test_a_busy_server_is_a_503_to_retry_later_with_nothing_submitted(api, settings):
    settings.GATEWAY_MAX_WAITING = 0
    response = generate(api)
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert "x-should-retry" not in response  # nothing was submitted: the SDK may send it again
    error = error_of(response)
    assert (error["type"], error["code"]) == ("server_error", "gateway_busy")
    assert not Batch.objects.exists()


def test_the_model_list_and_one_model_in_openais_shape(api):
    listed = api.get("/v1/models").json()
    assert listed["object"] == "list"
    assert {"id": "local/procedural-v1", "object": "model", "created": 0, "owned_by": "local"} in listed["data"]
    assert api.get("/v1/models/local/procedural-v1").json()["id"] == "local/procedural-v1"
    assert api.get("/v1/models/procedural-v1").json()["id"] == "local/procedural-v1"
    missing = api.get("/v1/models/openai/dall-e-3")
    assert missing.status_code == 404 and error_of(missing)["code"] == "model_not_found"


def test_the_model_list_needs_a_token(anon_api):
    response = anon_api.get("/v1/models")
    assert response.status_code == 401 and error_of(response)["code"] == "invalid_api_key"


def test_a_users_own_provider_key_offers_its_models_to_that_user_only(api, other_api, owner):
    keys.provider_key_save(owner=owner, provider="openai", api_key="sk-own-key-1234")
    mine = {item["id"] for item in api.get("/v1/models").json()["data"]}
    theirs = {item["id"] for item in other_api.get("/v1/models").json()["data"]}
    assert "openai/dall-e-3" in mine and "openai/dall-e-3" not in theirs


def test_the_same_seed_gives_the_same_pixels(api):
    def pixels(seed: int) -> bytes:
        b64 = generate(api, seed=seed, size="256x256").json()["data"][0]["b64_json"]
        return Image.open(io.BytesIO(base64.b64decode(b64))).tobytes()

    assert pixels(7) == pixels(7) != pixels(8)


def test_a_staff_token_without_two_factor_is_refused_when_required(staff, settings):
    settings.REQUIRE_2FA_FOR_STAFF = True
    response = generate(api_client_for(staff))
    assert response.status_code == 403 and error_of(response)["code"] == "two_factor_required"
    assert not Batch.objects.exists()


def test_the_portal_shows_a_gateway_batch_with_its_source(api, owner, client):
    batch_id = generate(api)["X-ImageGen-Batch"]
    client.force_login(owner)
    page = client.get(f"/batches/{batch_id}/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and "OpenAI-compatible API" in page.content.decode()
    page = client.get(f"/batches/{batch_id}/", HTTP_ACCEPT_LANGUAGE="zh-hant")
    assert "OpenAI 相容 API" in page.content.decode()


def test_an_idempotency_key_makes_a_repeated_call_answer_the_first_images(api, owner):
    headers = {"HTTP_IDEMPOTENCY_KEY": "gateway-retry-1"}
    body = {"prompt": "a red fox", "model": "local/procedural-v1", "size": "256x256"}
    first = api.post(GENERATIONS, body, format="json", **headers)
    again = api.post(GENERATIONS, body, format="json", **headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Batch.objects.filter(owner=owner).count() == 1
    other = api.post(GENERATIONS, {**body, "prompt": "a blue fox"}, format="json", **headers)
    assert other.status_code == 422
    assert error_of(other) == {
        "message": error_of(other)["message"],
        "type": "invalid_request_error",
        "param": None,
        "code": "idempotency_conflict",
    }


def test_a_retry_with_the_key_after_a_504_answers_the_images_of_the_first_batch(api, owner, monkeypatch):
    """The first call's wait runs out (its batch goes on); the retry waits for that batch, not a new one."""
    waited = gateway.batch_wait
    calls = iter([gateway.GatewayTimeout("timed out", details={})])

    def wait_or_time_out(*, batch: Batch, timeout: float, poll: float) -> Batch:
        timed_out = next(calls, None)
        if timed_out is not None:
            timed_out.details["batch_id"] = str(batch.pk)
            raise timed_out
        return waited(batch=batch, timeout=timeout, poll=poll)

    monkeypatch.setattr(gateway, "batch_wait", wait_or_time_out)
    headers = {"HTTP_IDEMPOTENCY_KEY": "gateway-timeout-1"}
    body = {"prompt": "a red fox", "n": 2, "size": "256x256", "response_format": "b64_json"}
    first = api.post(GENERATIONS, body, format="json", **headers)
    assert first.status_code == 504 and error_of(first)["code"] == "timeout"
    batch = Batch.objects.get(owner=owner)
    assert first["X-ImageGen-Batch"] == str(batch.pk)

    retry = api.post(GENERATIONS, body, format="json", **headers)
    assert retry.status_code == 200, retry.content
    assert retry["X-ImageGen-Batch"] == str(batch.pk) and len(retry.json()["data"]) == 2
    assert Batch.objects.filter(owner=owner).count() == 1, "the retry made no second batch (and no second charge)"

    again = api.post(GENERATIONS, body, format="json", **headers)
    assert again["Idempotent-Replayed"] == "true" and again.json() == retry.json()
    assert again["X-ImageGen-Batch"] == str(batch.pk)  # the replay names the batch as the answer did
    other = api.post(GENERATIONS, {**body, "prompt": "a blue fox"}, format="json", **headers)
    assert other.status_code == 422 and error_of(other)["code"] == "idempotency_conflict"


def test_retries_of_a_call_whose_batch_is_still_running_wait_for_that_batch(api, owner, settings, real_queue):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.2
    settings.GATEWAY_POLL_SECONDS = 0.05
    answers = [generate(api, key="gateway-timeout-2", n=3) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [504, 504, 504]
    batch = Batch.objects.get(owner=owner)
    assert {answer["X-ImageGen-Batch"] for answer in answers} == {str(batch.pk)}
    assert "Idempotent-Replayed" not in answers[-1]  # each retry waited again, on the same batch
    assert generate(api, n=3).status_code == 504 and Batch.objects.count() == 2  # without the key: a new call


def test_a_retry_after_the_users_deleted_the_first_batch_is_a_404_and_makes_nothing(api, owner, monkeypatch):
    def time_out(*, batch: Batch, timeout: float, poll: float) -> Batch:
        raise gateway.GatewayTimeout("timed out", details={"batch_id": str(batch.pk)})

    monkeypatch.setattr(gateway, "batch_wait", time_out)
    first = generate(api, key="gateway-timeout-3")
    assert first.status_code == 504
    assert api.delete(f"/api/v1/batches/{first['X-ImageGen-Batch']}/").status_code == 204
    retry = generate(api, key="gateway-timeout-3")
    assert retry.status_code == 404 and error_of(retry)["code"] == "not_found"
    assert first["X-ImageGen-Batch"] in error_of(retry)["message"]
    assert Batch.objects.filter(owner=owner).count() == 1


def test_after_a_502_the_same_key_answers_it_again_and_a_new_key_tries_again(api, owner, settings):
    settings.LOCAL_PROVIDER_FAIL_RATE = 1.0
    first = generate(api, key="gateway-failed-1")
    again = generate(api, key="gateway-failed-1")
    assert first.status_code == again.status_code == 502
    assert again["X-ImageGen-Batch"] == first["X-ImageGen-Batch"]
    assert Batch.objects.filter(owner=owner).count() == 1, "the key's one call was made once"
    settings.LOCAL_PROVIDER_FAIL_RATE = 0.0
    assert generate(api, key="gateway-failed-2").status_code == 200
    assert Batch.objects.filter(owner=owner).count() == 2


def test_a_retry_after_the_first_call_broke_while_waiting_answers_its_batch(api, owner, monkeypatch):
    """The key names the batch as soon as it is made: a crash while waiting cannot lead to a second one."""
    waited = gateway.batch_wait
    crashes = iter([RuntimeError("the web process went away")])

    def crash_once(*, batch: Batch, timeout: float, poll: float) -> Batch:
        crash = next(crashes, None)
        if crash is not None:
            raise crash
        return waited(batch=batch, timeout=timeout, poll=poll)

    monkeypatch.setattr(gateway, "batch_wait", crash_once)
    first = generate(api, key="gateway-crash-1", n=2)
    assert first.status_code == 500 and "X-ImageGen-Batch" not in first
    retry = generate(api, key="gateway-crash-1", n=2)
    assert retry.status_code == 200 and len(retry.json()["data"]) == 2
    batch = Batch.objects.get(owner=owner)  # one batch: the retry answered the first call's
    assert retry["X-ImageGen-Batch"] == str(batch.pk)
