"""Liveness: claims of dead workers and nodes are handed on at once; batches never stay open."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from generation import engine, lifecycle, limits, scheduler
from generation.models import BatchStatus, Generation, GenerationStatus, ProviderPermit, WorkerNode
from generation.providers.base import ProviderError


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def node(db):
    return WorkerNode.objects.create(id="node:here:1:a", host="elsewhere", pid=1, workers=2)


@pytest.fixture
def started(make_batch, node, settings):
    """A generation a worker of `node` has started, holding a provider permit."""
    settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS, "local": {"concurrency": 4, "rpm": 0}}
    make_batch(prompts=["a", "b"], run=False)
    [item] = scheduler.dispatch(slots=1)
    return lifecycle.generation_start(generation_id=item.generation_id, attempt=item.attempt, worker=f"{node.id}|{pid}")


pid = os.getpid()


def held_permits() -> int:
    return ProviderPermit.objects.exclude(holder="").count()


def test_a_claim_of_a_live_worker_is_left_alone(started, node):
    assert engine.claims_release_dead(node=node.id) == 0
    started.refresh_from_db()
    assert started.status == GenerationStatus.RUNNING


def test_a_claim_of_a_dead_worker_process_is_handed_on_at_once(started, node):
    gone = dead_pid()
    Generation.objects.filter(pk=started.pk).update(worker=f"{node.id}|{gone}")
    base = lifecycle.attempt_file_base(started.batch_id, started.pk, started.attempts)
    default_storage.save(f"images/{base}.png", ContentFile(b"half a png"))
    assert held_permits() == 1

    assert engine.claims_release_dead(node=node.id) == 1

    started.refresh_from_db()
    assert (started.status, started.worker, started.attempts) == ("pending", "", 1)
    assert held_permits() == 0, "the dead attempt's provider permit is free again"
    assert not default_storage.exists(f"images/{base}.png"), "the dead attempt's partial file is removed"


def test_a_node_whose_heartbeat_stopped_loses_its_claims(started, node, settings):
    WorkerNode.objects.filter(pk=node.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.WORKER_DEAD_AFTER_SECONDS + 1)
    )
    assert engine.claims_release_dead(node="node:other") == 1
    started.refresh_from_db()
    assert started.status == GenerationStatus.PENDING
    assert not WorkerNode.objects.filter(pk=node.pk).exists()


def test_a_node_on_this_host_whose_process_is_gone_is_dead_at_once(started, node):
    import socket

    WorkerNode.objects.filter(pk=node.pk).update(host=socket.gethostname(), pid=dead_pid())
    assert engine.claims_release_dead(node="node:other") == 1


def test_work_dispatched_but_never_started_is_handed_on_after_the_dispatch_lease(make_batch, node):
    make_batch(prompts=["a"], run=False)
    [item] = scheduler.dispatch(slots=1)
    assert engine.claims_release_dead() == 0
    Generation.objects.filter(pk=item.generation_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert engine.claims_release_dead() == 1
    assert Generation.objects.get(pk=item.generation_id).status == GenerationStatus.PENDING


def test_a_dead_worker_with_no_attempts_left_fails_as_worker_lost(started, node, settings):
    settings.GENERATION_MAX_ATTEMPTS = 1
    Generation.objects.filter(pk=started.pk).update(worker=f"{node.id}|{dead_pid()}")
    engine.claims_release_dead(node=node.id)
    started.refresh_from_db()
    assert (started.status, started.error_code) == ("failed", "worker_lost")


def test_a_clean_stop_hands_on_the_nodes_claims(started, node):
    engine.Node(id=node.id, workers=2).leave()
    started.refresh_from_db()
    assert started.status == GenerationStatus.PENDING
    assert not WorkerNode.objects.filter(pk=node.pk).exists()


def test_a_batch_whose_last_recount_failed_is_repaired(make_batch):
    batch = make_batch(prompts=["a", "b"])
    from generation.models import Batch

    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING, completed=0, finished_at=None)
    assert lifecycle.batches_repair() == [batch.pk]
    batch.refresh_from_db()
    assert (batch.status, batch.completed) == (BatchStatus.COMPLETED, 2)


def test_pending_work_of_a_cancelled_batch_is_cancelled_by_the_repair(make_batch):
    batch = make_batch(prompts=["a", "b"], run=False)
    from generation.models import Batch

    Batch.objects.filter(pk=batch.pk).update(cancel_requested_at=timezone.now())
    lifecycle.batches_repair()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    assert set(batch.generations.values_list("status", flat=True)) == {"cancelled"}


def test_the_scheduled_sweep_repairs_and_dispatches(make_batch, node):
    from generation import tasks

    batch = make_batch(prompts=["a"], run=False)
    result = tasks.sweep()
    assert result["dispatched"] == 1
    assert batch.generations.get().status == GenerationStatus.SUCCEEDED


def test_permits_are_freed_when_their_holder_ends(started):
    assert held_permits() == 1
    lifecycle.generation_fail(generation=started, error=ProviderError("bad_request", "no", retryable=False))
    assert held_permits() == 0
    assert limits.provider_in_flight(provider="local") == 0


def test_work_dispatched_before_a_node_died_is_handed_on_without_waiting_for_its_lease(make_batch, node, settings):
    make_batch(prompts=["a", "b"], run=False)
    [early] = scheduler.dispatch(slots=1)  # may sit in the dying node's own queue
    last_heartbeat = timezone.now() - timedelta(seconds=settings.WORKER_DEAD_AFTER_SECONDS + 1)
    WorkerNode.objects.filter(pk=node.pk).update(heartbeat_at=last_heartbeat)
    dispatched_at = last_heartbeat - timedelta(seconds=1)  # while the node was still alive
    lease = dispatched_at + timedelta(seconds=settings.SCHEDULER_DISPATCH_LEASE_SECONDS)
    Generation.objects.filter(pk=early.generation_id).update(lease_expires_at=lease)
    later = scheduler.dispatch(slots=1)[0]  # handed out after the node's last heartbeat
    assert engine.claims_release_dead(node="node:other") == 1
    assert Generation.objects.get(pk=early.generation_id).status == GenerationStatus.PENDING
    assert Generation.objects.get(pk=later.generation_id).status == GenerationStatus.RUNNING
