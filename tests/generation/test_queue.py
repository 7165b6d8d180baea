"""The sweeper: work left by a dead worker or lost by the broker is finished exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from generation import queue
from generation.models import BatchStatus, Generation, GenerationStatus


def expire_lease(generation: Generation, *, attempts: int) -> None:
    Generation.objects.filter(pk=generation.pk).update(
        status=GenerationStatus.RUNNING,
        attempts=attempts,
        lease_expires_at=timezone.now() - timedelta(seconds=5),
    )


@pytest.fixture
def batch(make_batch):
    return make_batch(prompts=["a", "b"], run=False)


def test_an_expired_lease_is_handed_on_and_rendered(batch, run_queue):
    stranded = batch.generations.get(position=0)
    expire_lease(stranded, attempts=1)
    with run_queue():
        result = queue.sweep_stale_generations()
    assert result["redelivered"] == 1
    stranded.refresh_from_db()
    assert (stranded.status, stranded.attempts) == ("succeeded", 2)


def test_an_expired_lease_without_attempts_left_fails_as_worker_lost(batch, settings):
    settings.GENERATION_MAX_ATTEMPTS = 2
    stranded = batch.generations.get(position=0)
    expire_lease(stranded, attempts=2)
    assert queue.sweep_stale_generations()["failed"] == 1
    stranded.refresh_from_db()
    assert (stranded.status, stranded.error_code) == ("failed", "worker_lost")
    batch.refresh_from_db()
    assert batch.failed == 1


def test_a_live_lease_is_left_alone(batch):
    running = batch.generations.get(position=0)
    Generation.objects.filter(pk=running.pk).update(
        status=GenerationStatus.RUNNING, attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    assert queue.sweep_stale_generations() == {"failed": 0, "redelivered": 0, "requeued": 0, "retried": 0}


def test_pending_work_the_broker_lost_is_enqueued_again(batch, settings, run_queue):
    settings.GENERATION_REQUEUE_AFTER_SECONDS = 60
    batch.generations.update(enqueued_at=timezone.now() - timedelta(minutes=5))
    with run_queue():
        assert queue.sweep_stale_generations()["requeued"] == 2
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


def test_recently_enqueued_pending_work_is_not_duplicated(batch):
    assert queue.sweep_stale_generations()["requeued"] == 0


def test_pending_work_of_a_cancelled_batch_is_not_requeued(batch, settings):
    settings.GENERATION_REQUEUE_AFTER_SECONDS = 60
    batch.generations.update(enqueued_at=timezone.now() - timedelta(minutes=5))
    batch.__class__.objects.filter(pk=batch.pk).update(cancel_requested_at=timezone.now())
    assert queue.sweep_stale_generations()["requeued"] == 0
