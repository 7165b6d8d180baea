"""A real qcluster renders batches end to end, and a killed cluster loses and duplicates nothing."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from generation import queue
from generation.models import Batch, BatchStatus, GenerationStatus
from tests.integration.cluster import cluster_env, kill_group, running_cluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def status_of(batch: Batch) -> str:
    batch.refresh_from_db()
    return batch.status


def test_a_real_cluster_renders_a_batch(make_batch, real_queue, tmp_path: Path):
    batch = make_batch(prompts=["一隻藍色的貓 🐱", "a red fox", "山水畫"], images_per_prompt=2)
    with running_cluster(cluster_env(tmp_path, Q_WORKERS="2"), tmp_path / "cluster.log"):
        wait_for(lambda: status_of(batch) == BatchStatus.COMPLETED, timeout=60)
    assert batch.completed == 6
    for generation in batch.generations.all():
        assert generation.attempts == 1
        assert default_storage.exists(generation.image.name)
        assert default_storage.exists(generation.thumbnail.name)


def test_killing_the_cluster_mid_batch_finishes_every_image_exactly_once(
    make_batch, real_queue, tmp_path: Path, settings
):
    # The Redis broker loses the tasks a killed cluster had taken; the sweeper (run below, in
    # this process) finds them by their age, so it uses the same short timings as the cluster.
    settings.GENERATION_REQUEUE_AFTER_SECONDS = 3
    settings.GENERATION_LEASE_SECONDS = 3
    total = 12
    batch = make_batch(prompts=[f"prompt {n}" for n in range(total)])
    slow = cluster_env(
        tmp_path,
        Q_WORKERS="2",
        LOCAL_PROVIDER_DELAY="0.6",
        GENERATION_TASK_TIMEOUT="4",
        # Settings refuse a task timeout shorter than the longest attempt (provider timeouts, storage retries).
        PROVIDER_CONNECT_TIMEOUT="1",
        PROVIDER_READ_TIMEOUT="1",
        REPLICATE_MAX_WAIT_SECONDS="1",
        STORAGE_INLINE_RETRIES="1",
        Q_RETRY_MARGIN="1",
        GENERATION_LEASE_SECONDS="3",
        GENERATION_REQUEUE_AFTER_SECONDS="3",
    )
    log = tmp_path / "cluster.log"
    with running_cluster(slow, log) as first:
        running = batch.generations.filter(status=GenerationStatus.RUNNING)
        wait_for(lambda: batch.generations.filter(status="succeeded").count() >= 2 and running.exists(), timeout=60)
        kill_group(first, signal.SIGKILL)  # the whole cluster dies mid-task, as in a power cut
        first.wait()
    assert status_of(batch) == BatchStatus.RUNNING
    with running_cluster(slow, log):
        # The scheduler would run the sweeper every minute; the test runs it more often.
        wait_for(lambda: status_of(batch) == BatchStatus.COMPLETED, timeout=90, every=queue.sweep_stale_generations)

    generations = list(batch.generations.all())
    assert len(generations) == total
    assert {g.status for g in generations} == {GenerationStatus.SUCCEEDED}
    assert any(g.attempts > 1 for g in generations), "the kill should have interrupted at least one image"
    referenced = {g.image.name for g in generations}
    assert len(referenced) == total
    stored = {f"images/{batch.pk}/{name}" for name in default_storage.listdir(f"images/{batch.pk}")[1]}
    for orphan in stored - referenced:  # only an interrupted attempt may have left a file behind
        generation = next(g for g in generations if str(g.pk) in orphan)
        assert not orphan.endswith(f"-{generation.attempts}.png")
