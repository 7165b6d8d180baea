"""Idempotency-Key on API POSTs: replays, conflicts, per-user keys, what is stored, and real concurrency."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django.utils import timezone
from waitress.server import create_server

from accounts.idempotency import (
    idempotency_batch_record,
    idempotency_claim,
    idempotency_keys_prune,
    idempotency_release,
    request_fingerprint,
)
from accounts.models import IdempotencyKey
from accounts.services import token_create
from generation.models import Batch
from monitoring.tasks import prune

BODY = {"prompts": ["a red fox"], "provider": "local"}


def post(client, body=BODY, key="key-1", path="/api/v1/batches/"):
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_and_body_replay_the_first_response(api):
    first = post(api)
    second = post(api)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Batch.objects.count() == 1


def test_the_body_is_compared_canonically(api):
    first = api.post("/api/v1/batches/", '{"prompts": ["a red fox"], "provider": "local"}',
                     content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")  # fmt: skip
    second = api.post("/api/v1/batches/", '{"provider":"local","prompts":["a red fox"]}',
                      content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")  # fmt: skip
    assert second.json()["id"] == first.json()["id"]
    assert Batch.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422_conflict(api):
    post(api)
    response = post(api, body={**BODY, "prompts": ["a blue cat"]})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert Batch.objects.count() == 1


def test_the_same_key_on_another_path_is_a_conflict(api):
    batch_id = post(api).json()["id"]
    response = post(api, body={}, path=f"/api/v1/batches/{batch_id}/cancel/")
    assert response.status_code == 422


def test_keys_belong_to_their_user(api, other_api):
    mine = post(api)
    theirs = post(other_api)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs


def test_without_a_key_every_post_runs(api):
    api.post("/api/v1/batches/", BODY, format="json")
    api.post("/api/v1/batches/", BODY, format="json")
    assert Batch.objects.count() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_a_bad_key_is_a_400(api, key):
    response = post(api, key=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert Batch.objects.count() == 0


def test_the_longest_printable_key_is_accepted(api):
    assert post(api, key="~" * 255).status_code == 201


def test_client_errors_are_replayed_too(api):
    first = post(api, body={"prompts": []})
    assert first.status_code == 400
    again = post(api, body={"prompts": []})
    assert (again.status_code, again["Idempotent-Replayed"]) == (400, "true")
    # The same error; only the request id is this request's own (added by the monitoring middleware).
    assert {**again.json()["error"], "request_id": ""} == {**first.json()["error"], "request_id": ""}


def test_a_429_is_not_stored_so_the_retry_runs(api, settings):
    settings.DEFAULT_MAX_ACTIVE_BATCHES = 0
    assert post(api).status_code == 429
    settings.DEFAULT_MAX_ACTIVE_BATCHES = 25
    retried = post(api)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried


def test_a_server_error_frees_the_key(api, monkeypatch):
    from generation import services

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "batch_create_estimated", broken)
    assert post(api).status_code == 500
    assert not IdempotencyKey.objects.exists()
    monkeypatch.undo()
    assert post(api).status_code == 201


def test_a_create_that_broke_after_making_its_batch_answers_that_batch_on_a_retry(api, owner, monkeypatch):
    """The process died (here: the answer failed) after the batch was committed: no second batch."""
    from generation import api as generation_api

    def broken(*args, **kwargs):
        raise RuntimeError("the process went away")

    monkeypatch.setattr(generation_api.BatchCreatedSerializer, "data", property(broken))
    assert post(api).status_code == 500
    made = Batch.objects.get()
    assert IdempotencyKey.objects.get().made_batch == made.pk
    monkeypatch.undo()
    retry = post(api)
    assert retry.status_code == 201 and retry.json()["id"] == str(made.pk)
    assert retry.json()["estimate"]["images"] == 1
    assert Batch.objects.count() == 1
    assert post(api).json() == retry.json()  # from now on the stored answer is replayed


def test_a_create_whose_process_died_after_making_its_batch_is_resumed_after_the_wait(api, settings, monkeypatch):
    """No answer will come from a dead process: after IDEMPOTENCY_WAIT_SECONDS the retry answers its batch."""
    from generation import api as generation_api

    settings.IDEMPOTENCY_WAIT_SECONDS = 0.3
    monkeypatch.setattr(generation_api.BatchCreatedSerializer, "data", property(lambda self: 1 / 0))
    assert post(api).status_code == 500
    IdempotencyKey.objects.update(unanswered=False)  # as a process killed mid-request leaves it
    monkeypatch.undo()
    retry = post(api)
    assert retry.status_code == 201 and retry.json()["id"] == str(Batch.objects.get().pk)


def test_anonymous_requests_are_refused_by_the_view(anon_api):
    assert post(anon_api).status_code == 401
    assert not IdempotencyKey.objects.exists()


def test_get_requests_ignore_the_header(api):
    response = api.get("/api/v1/batches/", HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert response.status_code == 200


def test_a_duplicate_of_a_request_still_running_is_a_409_after_waiting(api, owner, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    fingerprint = request_fingerprint(
        method="POST",
        path="/api/v1/batches/",
        content_type="application/json",
        body=b'{"prompts":["a red fox"],"provider":"local"}',
    )
    assert idempotency_claim(user_id=owner.pk, key="key-1", fingerprint=fingerprint).ours
    response = post(api)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_in_progress"
    assert response["Retry-After"] == "1"


def test_an_expired_key_runs_the_request_again(api, settings):
    settings.IDEMPOTENCY_TTL_HOURS = 24
    first = post(api)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    second = post(api)
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]


def test_expired_keys_are_pruned_by_the_daily_maintenance(api, owner):
    post(api, key="old")
    post(api, key="new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_keys_prune() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert prune()["idempotency_keys"] == 1


def test_a_key_parked_on_a_batch_is_kept_until_its_ttl_not_freed_as_abandoned(owner, settings):
    """A call that made a batch but not its answer: its key must not run the call again (a second charge)."""
    settings.IDEMPOTENCY_TTL_HOURS = 24
    claim = idempotency_claim(user_id=owner.pk, key="parked", fingerprint="f")
    idempotency_batch_record(row=claim.row, batch_id=uuid.uuid4())
    idempotency_release(row=claim.row)  # its request failed after making the batch: the key stays
    assert IdempotencyKey.objects.get().unanswered
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    assert idempotency_keys_prune() == 0
    assert not idempotency_claim(user_id=owner.pk, key="parked", fingerprint="f").ours
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_keys_prune() == 1


def test_the_schema_documents_the_header_on_posts(api):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    create = schema["paths"]["/api/v1/batches/"]["post"]
    assert any(parameter["name"] == "Idempotency-Key" for parameter in create["parameters"])
    assert {"409", "422"} <= set(create["responses"])
    listing = schema["paths"]["/api/v1/batches/"]["get"]
    assert not any(parameter["name"] == "Idempotency-Key" for parameter in listing.get("parameters", []))


# --- real concurrency: a live server and 20 parallel duplicates --------------------------------------


@pytest.fixture
def waitress_server() -> Iterator[str]:
    database = connections.settings["default"]
    kept_age = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    server = create_server(get_wsgi_application(), host="127.0.0.1", port=0, threads=20)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)
    database["CONN_MAX_AGE"] = kept_age


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_duplicates_create_exactly_one_batch(waitress_server, owner, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 30
    headers = {"Authorization": f"Bearer {token_create(user=owner, name='load').secret}", "Idempotency-Key": "once"}
    with (
        httpx.Client(base_url=waitress_server, headers=headers, timeout=120) as client,
        ThreadPoolExecutor(max_workers=20) as pool,
    ):
        responses = list(pool.map(lambda i: client.post("/api/v1/batches/", json=BODY), range(20)))
    assert Counter(response.status_code for response in responses) == Counter({201: 20})
    assert len({response.json()["id"] for response in responses}) == 1
    assert sum(response.headers.get("Idempotent-Replayed") == "true" for response in responses) == 19
    assert Batch.objects.filter(owner=owner).count() == 1
