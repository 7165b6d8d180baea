"""A real qcluster renders batches end to end, and no kill loses, duplicates or stalls work."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import psutil
import pytest
from django.core.files.storage import default_storage
from django.db.models import Max

from generation import services
from generation.models import Batch, BatchStatus, Generation, GenerationStatus, WorkerNode
from tests.integration.cluster import cluster_env, kill_group, running_cluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def status_of(batch: Batch) -> str:
    batch.refresh_from_db()
    return batch.status


def done(batch: Batch) -> int:
    return batch.generations.filter(status=GenerationStatus.SUCCEEDED).count()


def assert_each_image_once(batch: Batch, total: int) -> None:
    generations = list(batch.generations.all())
    assert len(generations) == total
    assert {g.status for g in generations} == {GenerationStatus.SUCCEEDED}
    referenced = {g.image.name for g in generations}
    assert len(referenced) == total
    stored = {f"images/{batch.pk}/{name}" for name in default_storage.listdir(f"images/{batch.pk}")[1]}
    assert stored == referenced, "no orphan or partial file of a killed attempt is left"


def worker_pids(cluster_pid: int) -> list[int]:
    """The cluster's django-q worker processes (children of its sentinel)."""
    root = psutil.Process(cluster_pid)
    [sentinel] = root.children()
    return [child.pid for child in sentinel.children()]


def test_a_real_cluster_renders_a_batch(make_batch, real_queue, tmp_path: Path):
    batch = make_batch(prompts=["一隻藍色的貓 🐱", "a red fox", "山水畫"], images_per_prompt=2)
    with running_cluster(cluster_env(tmp_path, Q_WORKERS="2"), tmp_path / "cluster.log", stop_seconds=60):
        wait_for(lambda: status_of(batch) == BatchStatus.COMPLETED, timeout=60)
    assert batch.completed == 6
    for generation in batch.generations.all():
        assert generation.attempts == 1
        assert default_storage.exists(generation.image.name)
        assert default_storage.exists(generation.thumbnail.name)
    assert not WorkerNode.objects.exists(), "a node that stopped cleanly leaves no heartbeat row"


def slow_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    settings = {"Q_WORKERS": "2", "LOCAL_PROVIDER_DELAY": "0.6", "WORKER_DEAD_AFTER_SECONDS": "6", **extra}
    return cluster_env(tmp_path, **settings)


def test_killing_the_whole_cluster_mid_batch_resumes_within_seconds_of_the_restart(
    make_batch, real_queue, tmp_path: Path
):
    total = 12
    batch = make_batch(prompts=[f"prompt {n}" for n in range(total)])
    log = tmp_path / "cluster.log"
    with running_cluster(slow_env(tmp_path), log) as first:
        running = batch.generations.filter(status=GenerationStatus.RUNNING)
        wait_for(lambda: done(batch) >= 2 and running.exists(), timeout=60)
        in_flight = running.count()
        kill_group(first, signal.SIGKILL)  # the whole cluster dies mid-task, as in a power cut
        first.wait()
    assert status_of(batch) == BatchStatus.RUNNING
    attempts_at_kill = sum(batch.generations.values_list("attempts", flat=True))
    before = done(batch)
    with running_cluster(slow_env(tmp_path), log):
        restarted = time.monotonic()
        wait_for(lambda: done(batch) > before, timeout=30)
        resumed_after = time.monotonic() - restarted
        wait_for(lambda: status_of(batch) == BatchStatus.COMPLETED, timeout=90)
    assert resumed_after < 30, f"work resumed {resumed_after:.1f} s after the restart"
    assert_each_image_once(batch, total)
    repeated = sum(batch.generations.values_list("attempts", flat=True)) - attempts_at_kill
    # Images not yet started when the cluster died take their first attempt now; only those in
    # flight at the kill may be called twice.
    assert repeated - (total - before - in_flight) <= in_flight


def test_killing_every_worker_process_hands_their_images_on_at_once(make_batch, real_queue, tmp_path: Path):
    total = 10
    batch = make_batch(prompts=[f"prompt {n}" for n in range(total)])
    with running_cluster(slow_env(tmp_path), tmp_path / "cluster.log") as cluster:
        running = batch.generations.filter(status=GenerationStatus.RUNNING).exclude(worker="")
        wait_for(running.exists, timeout=60)
        killed_at = time.monotonic()
        for pid in worker_pids(cluster.pid):
            psutil.Process(pid).kill()
        stuck = set(running.values_list("id", flat=True))
        wait_for(lambda: not batch.generations.filter(pk__in=stuck, status="running", attempts=1).exists(), timeout=20)
        handed_on_after = time.monotonic() - killed_at
        wait_for(lambda: status_of(batch) == BatchStatus.COMPLETED, timeout=90)
    assert handed_on_after < 15, f"the dead workers' images waited {handed_on_after:.1f} s"
    assert_each_image_once(batch, total)


def test_killing_the_django_q_monitor_restarts_the_cluster_and_the_batch_completes(
    make_batch, real_queue, tmp_path: Path
):
    total = 16
    batch = make_batch(prompts=[f"prompt {n}" for n in range(total)])
    env = slow_env(tmp_path, LOCAL_PROVIDER_DELAY="0.3", ENGINE_RESULTS_STALL_SECONDS="4")
    log = tmp_path / "cluster.log"
    with running_cluster(env, log) as cluster:
        wait_for(lambda: done(batch) >= 1, timeout=60)
        node = WorkerNode.objects.get()
        monitor = int(re.findall(r"monitoring at (\d+)", log.read_text())[-1])
        assert monitor in [child.pid for child in psutil.Process(cluster.pid).children(recursive=True)]
        psutil.Process(monitor).kill()
        wait_for(lambda: status_of(batch) == BatchStatus.COMPLETED, timeout=120)
        assert WorkerNode.objects.filter(pk=node.pk).exists(), "the node itself kept running"
    assert_each_image_once(batch, total)


def test_a_small_batch_finishes_before_a_big_one_is_20_percent_done(
    make_batch, real_queue, tmp_path: Path, other_user, settings
):
    settings.DEFAULT_MAX_IMAGES_PER_BATCH = 2000
    big = make_batch(prompts=[f"big {n}" for n in range(1000)], images_per_prompt=2, run=False)
    env = cluster_env(tmp_path, Q_WORKERS="2", LOCAL_PROVIDER_DELAY="0.05")
    with running_cluster(env, tmp_path / "cluster.log"):
        wait_for(lambda: done(big) >= 20, timeout=120)
        small = make_batch(other_user, prompts=["small 1", "small 2", "small 3", "small 4"], run=False)
        wait_for(lambda: status_of(small) == BatchStatus.COMPLETED, timeout=120)
        big_done = done(big)
        small_finished = small.finished_at
    assert big_done < 400, f"the big batch was {big_done / 20:.0f} % done when the small one finished"
    assert small_finished is not None


def test_priority_orders_work_within_a_user(make_batch, real_queue, tmp_path: Path, staff):
    low = make_batch(staff, prompts=[f"low {n}" for n in range(6)], run=False)
    spec = services.check_batch_request(prompts=[f"high {n}" for n in range(6)])
    high = services.batch_create(owner=staff, spec=spec, priority=2)
    env = cluster_env(tmp_path, Q_WORKERS="1", SCHEDULER_PREFETCH="0", LOCAL_PROVIDER_DELAY="0.1")
    with running_cluster(env, tmp_path / "cluster.log"):
        wait_for(lambda: status_of(low) == BatchStatus.COMPLETED, timeout=60)
    last_high = high.generations.aggregate(last=Max("finished_at"))["last"]
    first_low = low.generations.order_by("finished_at").values_list("finished_at", flat=True).first()
    assert last_high < first_low


def test_pause_holds_and_resume_continues(make_batch, real_queue, tmp_path: Path, django_capture_on_commit_callbacks):
    batch = make_batch(prompts=[f"p {n}" for n in range(20)], run=False)
    env = cluster_env(tmp_path, Q_WORKERS="2", LOCAL_PROVIDER_DELAY="0.2")
    with running_cluster(env, tmp_path / "cluster.log"):
        wait_for(lambda: done(batch) >= 2, timeout=60)
        services.batch_pause(batch=Batch.objects.get(pk=batch.pk))
        wait_for(lambda: status_of(batch) == BatchStatus.PAUSED, timeout=30)
        held = done(batch)
        time.sleep(3)
        assert done(batch) == held, "no new image started while paused"
        services.batch_resume(batch=Batch.objects.get(pk=batch.pk))
        wait_for(lambda: status_of(batch) == BatchStatus.COMPLETED, timeout=60)
    assert batch.completed == 20


def test_cancel_while_failures_are_in_flight_ends_cancelled(make_batch, real_queue, tmp_path: Path):
    batch = make_batch(prompts=[f"p {n}" for n in range(12)], run=False)
    env = cluster_env(
        tmp_path, Q_WORKERS="2", LOCAL_PROVIDER_DELAY="0.3", LOCAL_PROVIDER_FAIL_RATE="1", GENERATION_MAX_ATTEMPTS="50"
    )
    with running_cluster(env, tmp_path / "cluster.log"):
        wait_for(lambda: Generation.objects.filter(batch=batch).exclude(error_code="").exists(), timeout=60)
        services.batch_cancel(batch=Batch.objects.get(pk=batch.pk))
        wait_for(lambda: status_of(batch) == BatchStatus.CANCELLED, timeout=30)
    assert set(batch.generations.values_list("status", flat=True)) == {GenerationStatus.CANCELLED}
