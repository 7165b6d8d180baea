"""Rendering one generation: atomic claims, fencing, typed failures and crash safety."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from generation import lifecycle, runner, scheduler, tasks
from generation.models import BatchStatus, Generation, GenerationStatus
from generation.providers.base import ProviderError
from generation.providers.local import LocalProvider


def dispatch_one():
    [dispatched] = scheduler.dispatch(slots=1)
    return dispatched


def run_next() -> str:
    """Dispatch the next attempt and run it as a worker would (retries then drain inline)."""
    item = dispatch_one()
    return tasks.run_generation(str(item.generation_id), item.attempt)


@pytest.fixture
def pending(make_batch):
    batch = make_batch(prompts=["紅色夕陽 🌅"], seed=42, run=False)
    return batch.generations.get()


def test_a_generation_is_rendered_once_with_its_parameters_in_the_png(pending):
    assert run_next() == GenerationStatus.SUCCEEDED
    pending.refresh_from_db()
    assert (pending.status, pending.attempts, pending.provider, pending.model) == (
        "succeeded",
        1,
        "local",
        "procedural-v1",
    )
    with default_storage.open(pending.image.name) as file:
        image = Image.open(io.BytesIO(file.read()))
    assert image.size == (512, 512)
    assert image.info["prompt"] == "紅色夕陽 🌅"
    assert image.info["seed"] == "42"
    assert image.info["provider"] == "local"
    with default_storage.open(pending.thumbnail.name) as file:
        thumbnail = Image.open(io.BytesIO(file.read()))
    assert thumbnail.format == "WEBP"
    assert max(thumbnail.size) == 256
    assert pending.batch.__class__.objects.get(pk=pending.batch_id).status == BatchStatus.COMPLETED


def test_a_second_delivery_of_the_same_task_does_nothing(pending):
    item = dispatch_one()
    assert runner.generation_run(generation_id=item.generation_id, attempt=item.attempt) == "succeeded"
    assert runner.generation_run(generation_id=item.generation_id, attempt=item.attempt) == "skipped"
    pending.refresh_from_db()
    assert pending.attempts == 1
    assert len(default_storage.listdir(f"images/{pending.batch_id}")[1]) == 1


def test_a_dispatched_generation_is_not_dispatched_twice(pending):
    assert dispatch_one().generation_id == pending.pk
    assert scheduler.dispatch(slots=1) == []


def test_a_handed_on_attempt_cannot_start(pending):
    item = dispatch_one()
    Generation.objects.filter(pk=pending.pk).update(attempts=2)  # the engine handed it to attempt 2
    assert runner.generation_run(generation_id=item.generation_id, attempt=item.attempt) == "skipped"


def test_a_superseded_attempt_discards_its_image(pending):
    """A worker whose attempt was handed on must not overwrite the new owner's row."""
    item = dispatch_one()
    stale = lifecycle.generation_start(generation_id=item.generation_id, attempt=item.attempt, worker="w|1")
    Generation.objects.filter(pk=pending.pk).update(attempts=2)  # another worker took over
    assert runner._render(stale) == "superseded"
    pending.refresh_from_db()
    assert pending.status == GenerationStatus.RUNNING and not pending.image
    assert default_storage.listdir(f"images/{pending.batch_id}")[1] == []


def test_a_permanent_provider_error_fails_at_once(pending, monkeypatch):
    def refuse(self, request):
        raise ProviderError("content_filtered", "The prompt was refused.", retryable=False)

    monkeypatch.setattr(LocalProvider, "generate", refuse)
    assert run_next() == GenerationStatus.FAILED
    pending.refresh_from_db()
    assert (pending.attempts, pending.error_code, pending.error_message) == (
        1,
        "content_filtered",
        "The prompt was refused.",
    )
    assert pending.batch.__class__.objects.get(pk=pending.batch_id).status == BatchStatus.FAILED


def test_a_transient_error_is_retried_until_attempts_run_out(pending, monkeypatch, settings):
    settings.GENERATION_MAX_ATTEMPTS = 3
    calls = []

    def flaky(self, request):
        calls.append(request)
        raise ProviderError("server_error", "Upstream 503.", retryable=True)

    monkeypatch.setattr(LocalProvider, "generate", flaky)
    run_next()  # the queue is synchronous: retries run inline
    pending.refresh_from_db()
    assert len(calls) == 3
    assert (pending.status, pending.attempts, pending.error_code) == ("failed", 3, "server_error")


def test_a_transient_error_then_success_records_the_success(pending, monkeypatch):
    original = LocalProvider.generate
    outcomes = iter([ProviderError("timeout", "Timed out.", retryable=True)])

    def once_flaky(self, request):
        error = next(outcomes, None)
        if error:
            raise error
        return original(self, request)

    monkeypatch.setattr(LocalProvider, "generate", once_flaky)
    run_next()
    pending.refresh_from_db()
    assert (pending.status, pending.attempts, pending.error_code) == ("succeeded", 2, "")


def test_a_bug_in_rendering_never_strands_the_generation(pending, monkeypatch, settings):
    settings.GENERATION_MAX_ATTEMPTS = 1
    monkeypatch.setattr(LocalProvider, "generate", lambda self, request: 1 / 0)
    assert run_next() == GenerationStatus.FAILED
    pending.refresh_from_db()
    assert pending.error_code == "internal_error"
    assert "ZeroDivisionError" in pending.error_message


def test_garbage_instead_of_an_image_is_an_invalid_image_error(pending, monkeypatch, settings):
    from generation.providers.base import GeneratedImage

    settings.GENERATION_MAX_ATTEMPTS = 1
    monkeypatch.setattr(LocalProvider, "generate", lambda self, r: [GeneratedImage(b"<html>", "image/png")])
    run_next()
    pending.refresh_from_db()
    assert (pending.status, pending.error_code) == ("failed", "invalid_image")


def test_a_cancelled_batch_is_not_rendered(make_batch):
    from generation.services import batch_cancel

    batch = batch_cancel(batch=make_batch(run=False))
    generation = batch.generations.first()
    assert scheduler.dispatch(slots=1) == []
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED
