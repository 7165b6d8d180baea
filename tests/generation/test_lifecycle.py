"""The lifecycle: answers are never thrown away, cancel wins, failures are logged, writes survive reconnects."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import OperationalError, connection

from generation import lifecycle, scheduler, services, tasks
from generation.models import BatchStatus, Generation, GenerationStatus, SpooledResult
from generation.providers.base import ProviderError
from generation.providers.local import LocalProvider


@pytest.fixture
def provider_calls(monkeypatch):
    calls = []
    original = LocalProvider.generate

    def counted(self, request):
        calls.append(request.prompt)
        return original(self, request)

    monkeypatch.setattr(LocalProvider, "generate", counted)
    return calls


@pytest.fixture
def full_disk(monkeypatch, settings):
    """Every write to storage fails with ENOSPC until `clear()`, leaving a partial file as a real disk would."""
    settings.STORAGE_INLINE_RETRIES = 0
    settings.GENERATION_RETRY_INLINE_SECONDS = 0  # the inline queue does not wait for the next store
    state = {"full": True}
    original = FileSystemStorage._save

    def save(self, name, content):
        if state["full"]:
            Path(self.path(name)).parent.mkdir(parents=True, exist_ok=True)
            with open(self.path(name), "wb") as partial:
                partial.write(b"\x89PNG half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", save)
    state["clear"] = lambda: state.update(full=False)
    return state


def test_a_full_disk_costs_no_extra_provider_call(make_batch, provider_calls, full_disk):
    batch = make_batch(prompts=["一隻貓"])
    generation = batch.generations.get()
    assert generation.status == GenerationStatus.PENDING
    assert generation.error_code == "storage_unavailable"
    assert generation.attempts == 0, "storing again spends no provider attempt"
    assert SpooledResult.objects.filter(generation=generation).exists()
    assert provider_calls == ["一隻貓"]
    images_dir = f"images/{batch.pk}"
    from django.core.files.storage import default_storage

    assert default_storage.listdir(images_dir)[1] == [], "no partial PNG is left behind"

    full_disk["clear"]()
    Generation.objects.filter(pk=generation.pk).update(not_before=None)
    tasks.dispatch_now()
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.SUCCEEDED
    assert provider_calls == ["一隻貓"], "the spooled answer was stored; the provider was not called again"
    assert not SpooledResult.objects.exists()


def test_storage_that_never_comes_back_fails_the_image_after_its_tries(make_batch, full_disk, settings):
    settings.STORAGE_MAX_TRIES = 2
    batch = make_batch(prompts=["x"])
    for _ in range(3):
        Generation.objects.filter(batch=batch).update(not_before=None)
        tasks.dispatch_now()
    generation = batch.generations.get()
    assert (generation.status, generation.error_code) == ("failed", "storage_unavailable")
    assert not SpooledResult.objects.exists()


def test_cancel_wins_over_a_retry_in_flight(make_batch):
    batch = make_batch(prompts=["a", "b"], run=False)
    [item] = scheduler.dispatch(slots=1)
    running = lifecycle.generation_start(generation_id=item.generation_id, attempt=item.attempt, worker="n|1")
    batch = services.batch_cancel(batch=batch)
    assert batch.status == BatchStatus.RUNNING  # one image is still in flight
    lifecycle.generation_fail(generation=running, error=ProviderError("server_error", "503", retryable=True))
    running.refresh_from_db()
    assert running.status == GenerationStatus.CANCELLED
    assert lifecycle.batch_refresh(batch_id=batch.pk).status == BatchStatus.CANCELLED


def test_a_final_failure_logs_a_warning_naming_the_generation_batch_and_code(make_batch, caplog, monkeypatch):
    def refuse(self, request):
        raise ProviderError("content_filtered", "refused", retryable=False)

    monkeypatch.setattr(LocalProvider, "generate", refuse)
    with caplog.at_level(logging.WARNING, logger="generation.lifecycle"):
        batch = make_batch(prompts=["x"])
    generation = batch.generations.get()
    record = next(r for r in caplog.records if "failed for good" in r.getMessage())
    assert str(generation.pk) in record.getMessage() and str(batch.pk) in record.getMessage()
    assert record.error_code == "content_filtered"
    assert generation.error_permanent


def test_retry_failed_skips_permanent_failures_unless_asked(make_batch, monkeypatch, run_queue):
    def refuse(self, request):
        if request.prompt == "bad":
            raise ProviderError("content_filtered", "refused", retryable=False)
        raise ProviderError("server_error", "503", retryable=True)

    monkeypatch.setattr(LocalProvider, "generate", refuse)
    batch = make_batch(prompts=["bad", "flaky"])
    assert batch.status == BatchStatus.FAILED
    monkeypatch.undo()
    with run_queue():
        batch = services.batch_retry_failed(batch=batch)
    batch.refresh_from_db()
    assert dict(batch.generations.values_list("prompt", "status")) == {"bad": "failed", "flaky": "succeeded"}
    with run_queue():
        services.batch_retry_failed(batch=batch, include_permanent=True)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


def test_one_image_can_be_retried(make_batch, monkeypatch, run_queue):
    monkeypatch.setattr(
        LocalProvider, "generate", lambda self, r: (_ for _ in ()).throw(ProviderError("bad_request", "no"))
    )
    batch = make_batch(prompts=["a", "b"])
    monkeypatch.undo()
    generation = batch.generations.get(position=1)
    with run_queue():
        services.generation_retry(generation=generation)
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == ("succeeded", 1)
    batch.refresh_from_db()
    assert (batch.status, batch.completed, batch.failed) == (BatchStatus.PARTIAL, 1, 1)


def test_pause_holds_new_work_and_resume_continues(make_batch, run_queue):
    batch = make_batch(prompts=["a", "b", "c"], run=False)
    batch = services.batch_pause(batch=batch)
    assert batch.status == BatchStatus.PAUSED
    assert tasks.dispatch_now() == 0
    with run_queue():
        batch = services.batch_resume(batch=batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


def test_the_batch_keeps_its_cost_with_its_counters(make_batch):
    batch = make_batch(prompts=["a", "b"])
    assert batch.cost_usd == sum(g.cost_usd or 0 for g in batch.generations.all())


@pytest.mark.django_db(transaction=True)
def test_a_dropped_database_connection_is_reopened_before_the_write(monkeypatch):
    calls = []

    @lifecycle.reconnecting
    def write():
        calls.append(connection.connection)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "written"

    monkeypatch.setattr(lifecycle.time, "sleep", lambda seconds: None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert write() == "written"
    assert len(calls) == 2
    assert calls[1] is not calls[0], "the second try runs on a new connection"
