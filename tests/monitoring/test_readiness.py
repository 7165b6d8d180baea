"""Liveness and readiness: each check timed, 503 naming what failed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from generation.models import Batch, GenerationStatus, WorkerNode
from monitoring import health, resources


@pytest.mark.django_db
def test_liveness_answers_without_dependencies(client: Client) -> None:
    body = client.get("/health/live").json()
    assert body["status"] == "ok" and "process" in body["checks"]


@pytest.mark.django_db
def test_readiness_fails_naming_the_missing_workers(client: Client) -> None:
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["workers"]
    for name in ("database", "cache", "queue", "storage", "disk", "workers", "progress", "results"):
        assert "duration_ms" in body["checks"][name]


@pytest.mark.django_db
def test_readiness_is_ok_when_every_check_passes(client: Client, monkeypatch: Any) -> None:
    monkeypatch.setitem(health.READINESS, "workers", lambda: "1 cluster(s)")
    monkeypatch.setitem(health.CHECKS, "workers", lambda: "1 cluster(s)")
    assert client.get("/health/ready").status_code == 200


@pytest.mark.django_db
def test_unwritable_storage_and_full_disk_fail_readiness(client: Client, settings: Any, tmp_path: Any) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = str(blocked)
    settings.ALERT_DISK_FREE_PERCENT = 101
    body = client.get("/health/ready").json()
    assert {"storage", "disk"} <= set(body["failing"])
    assert "free" in body["checks"]["disk"]["detail"]


@pytest.mark.django_db
def test_health_refuses_post(client: Client) -> None:
    assert client.post("/health/ready").status_code == 405


# --- Stalls: work waits, workers live, nothing moves (docs/operations.md, "Health checks"). ---

FINE = {"monitor_alive": True, "results_backlog": 0, "results_stalled_seconds": 0.0}


@pytest.fixture
def node(db: None) -> WorkerNode:
    """A live worker node that started long ago, as the engine's qcluster writes it."""
    return WorkerNode.objects.create(
        id="node-a", host="worker-1", pid=4321, workers=8, started_at=timezone.now() - timedelta(hours=1), state=FINE
    )


def lease(seconds: float) -> Any:
    """A lease that runs out `seconds` from now (negative: already ran out)."""
    return timezone.now() + timedelta(seconds=seconds)


@pytest.fixture
def quiet_for() -> Any:
    """Age every generation of a batch so that nothing happened for `seconds`."""

    def age(batch: Any, seconds: float) -> None:
        then = timezone.now() - timedelta(seconds=seconds)
        batch.generations.update(created_at=then)

    return age


def _finished_long_ago(make_batch: Any, seconds: float) -> None:
    done = make_batch(run=False, prompts=["done earlier"])
    then = timezone.now() - timedelta(seconds=seconds)
    done.generations.update(status=GenerationStatus.SUCCEEDED, created_at=then, started_at=then, finished_at=then)


@pytest.mark.django_db
def test_pending_work_with_a_live_node_and_no_recent_finish_is_a_stall(
    client: Client, node: WorkerNode, make_batch: Any, quiet_for: Any, settings: Any
) -> None:
    quiet = settings.STALL_ALERT_SECONDS + 200
    _finished_long_ago(make_batch, quiet)
    quiet_for(make_batch(run=False, prompts=[f"p{i}" for i in range(3)]), quiet)
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["progress"]
    detail = body["checks"]["progress"]["detail"]
    assert detail.startswith(
        "stalled: 3 image(s) waiting (3 waiting, 0 dispatched, 0 in flight, 0 stuck) while 1 worker node(s) are alive"
    )
    assert f"but no worker is on any and none finished for {quiet} s" in detail
    assert f"STALL_ALERT_SECONDS={settings.STALL_ALERT_SECONDS}" in detail


@pytest.mark.django_db
def test_a_long_provider_call_held_by_a_live_node_is_not_a_stall(
    client: Client, node: WorkerNode, make_batch: Any, quiet_for: Any, settings: Any
) -> None:
    quiet = settings.STALL_ALERT_SECONDS + 200
    _finished_long_ago(make_batch, quiet)
    batch = make_batch(run=False, prompts=["slow", "waiting"])
    quiet_for(batch, quiet)
    started = timezone.now() - timedelta(seconds=settings.GENERATION_TASK_TIMEOUT - 30)
    batch.generations.filter(position=0).update(
        status=GenerationStatus.RUNNING, started_at=started, worker="node-a|77", lease_expires_at=lease(40)
    )
    body = client.get("/health/ready").json()
    assert body["checks"]["progress"]["status"] == "ok"
    assert body["checks"]["progress"]["detail"] == "1 waiting, 0 dispatched, 1 in flight, 0 stuck"


@pytest.mark.django_db
def test_running_images_whose_lease_ran_out_are_stuck_and_stall(
    client: Client, node: WorkerNode, make_batch: Any, settings: Any
) -> None:
    """The issue's case: the last images sit `running` after their workers were killed; nothing else waits."""
    long_ago = timezone.now() - timedelta(seconds=settings.STALL_ALERT_SECONDS + 200)
    batch = make_batch(run=False, prompts=[f"p{i}" for i in range(8)])
    batch.generations.update(
        status=GenerationStatus.RUNNING,
        created_at=long_ago,
        started_at=long_ago,
        worker="node-a|9",
        lease_expires_at=lease(-5),
    )
    detail = client.get("/health/ready").json()["checks"]["progress"]
    assert detail["status"] == "fail"
    assert "(0 waiting, 0 dispatched, 0 in flight, 8 stuck)" in detail["detail"]


@pytest.mark.django_db
def test_running_images_of_a_dead_node_are_not_in_flight(
    client: Client, node: WorkerNode, make_batch: Any, settings: Any
) -> None:
    long_ago = timezone.now() - timedelta(seconds=settings.STALL_ALERT_SECONDS + 60)
    batch = make_batch(run=False, prompts=["orphan"])
    batch.generations.update(
        status=GenerationStatus.RUNNING,
        created_at=long_ago,
        started_at=long_ago,
        worker="gone|1",
        lease_expires_at=lease(60),
    )
    assert client.get("/health/ready").json()["checks"]["progress"]["status"] == "fail"


@pytest.mark.django_db
def test_attempts_dispatched_but_never_started_are_a_stall(
    client: Client, node: WorkerNode, make_batch: Any, quiet_for: Any, settings: Any
) -> None:
    """Workers that take nothing (frozen, wedged): the engine hands the attempts out again and again."""
    batch = make_batch(run=False)
    quiet_for(batch, settings.STALL_ALERT_SECONDS + 200)
    batch.generations.update(status=GenerationStatus.RUNNING, worker="", lease_expires_at=lease(10))
    progress = client.get("/health/ready").json()["checks"]["progress"]
    assert progress["status"] == "fail" and "(0 waiting, 2 dispatched, 0 in flight, 0 stuck)" in progress["detail"]


@pytest.mark.django_db
def test_a_batch_just_dispatched_after_a_quiet_day_is_not_a_stall(
    client: Client, node: WorkerNode, make_batch: Any
) -> None:
    _finished_long_ago(make_batch, 86400)
    batch = make_batch(run=False)
    batch.generations.update(status=GenerationStatus.RUNNING, worker="", lease_expires_at=lease(10))
    assert client.get("/health/ready").json()["checks"]["progress"]["status"] == "ok"


@pytest.mark.django_db
def test_work_that_just_arrived_after_a_quiet_day_is_not_a_stall(
    client: Client, node: WorkerNode, make_batch: Any
) -> None:
    _finished_long_ago(make_batch, 86400)
    make_batch(run=False)
    assert client.get("/health/ready").json()["checks"]["progress"]["status"] == "ok"


@pytest.mark.django_db
def test_freshly_started_workers_get_the_same_grace(
    client: Client, node: WorkerNode, make_batch: Any, quiet_for: Any, settings: Any
) -> None:
    quiet_for(make_batch(run=False), settings.STALL_ALERT_SECONDS + 200)
    WorkerNode.objects.update(started_at=timezone.now() - timedelta(seconds=10))
    assert client.get("/health/ready").json()["checks"]["progress"]["status"] == "ok"


@pytest.mark.django_db
def test_paused_and_not_yet_due_work_is_not_waiting(
    client: Client, node: WorkerNode, make_batch: Any, quiet_for: Any, settings: Any
) -> None:
    paused = make_batch(run=False)
    quiet_for(paused, settings.STALL_ALERT_SECONDS + 200)
    Batch.objects.filter(pk=paused.pk).update(paused_at=timezone.now())
    later = make_batch(run=False)
    quiet_for(later, settings.STALL_ALERT_SECONDS + 200)
    later.generations.update(not_before=timezone.now() + timedelta(minutes=5))
    progress = client.get("/health/ready").json()["checks"]["progress"]
    assert progress["status"] == "ok" and progress["detail"].startswith("0 waiting")


@pytest.mark.django_db
def test_without_a_live_node_only_workers_fails(client: Client, make_batch: Any, quiet_for: Any, settings: Any) -> None:
    quiet_for(make_batch(run=False), settings.STALL_ALERT_SECONDS + 200)
    assert client.get("/health/ready").json()["failing"] == ["workers"]


# --- Results: the django-q monitor saves finished tasks; without it they are delivered forever. ---


@pytest.mark.django_db
def test_a_dead_monitor_with_results_waiting_fails_results(client: Client, node: WorkerNode) -> None:
    WorkerNode.objects.update(state={**FINE, "monitor_alive": False, "results_backlog": 5})
    response = client.get("/health/ready")
    assert response.status_code == 503 and response.json()["failing"] == ["results"]
    detail = response.json()["checks"]["results"]["detail"]
    assert detail == "node node-a on worker-1: the django-q monitor is dead, 5 finished task(s) not saved"


@pytest.mark.django_db
def test_a_monitor_not_reported_yet_with_nothing_waiting_is_fine(client: Client, node: WorkerNode) -> None:
    """While a cluster (re)starts its stats are not published yet: no monitor, but nothing is lost."""
    WorkerNode.objects.update(state={**FINE, "monitor_alive": False, "results_backlog": 0})
    assert client.get("/health/ready").json()["checks"]["results"]["status"] == "ok"


@pytest.mark.django_db
def test_a_result_queue_that_stopped_draining_fails_results(client: Client, node: WorkerNode, settings: Any) -> None:
    stalled = {**FINE, "results_backlog": 37, "results_stalled_seconds": settings.ENGINE_RESULTS_STALL_SECONDS + 5.0}
    WorkerNode.objects.update(state=stalled)
    detail = client.get("/health/ready").json()["checks"]["results"]
    assert detail["status"] == "fail" and "37 result(s) not saved for" in detail["detail"]


@pytest.mark.django_db
def test_a_short_result_backlog_is_fine(client: Client, node: WorkerNode) -> None:
    WorkerNode.objects.update(state={**FINE, "results_backlog": 3, "results_stalled_seconds": 4.0})
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["results"]["detail"] == "1 node(s) saving results, 3 waiting"


@pytest.mark.django_db
def test_a_node_that_does_not_report_results_is_not_failed(client: Client, node: WorkerNode) -> None:
    WorkerNode.objects.update(state={})
    assert client.get("/health/ready").json()["checks"]["results"]["status"] == "ok"


# --- Disk: the data directory's file system and, when it is another one, the media's. ---


@pytest.fixture
def media_elsewhere(monkeypatch: Any, settings: Any, tmp_path: Any) -> Any:
    """Put MEDIA_ROOT on a (pretend) separate file system whose free space the test chooses."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    media_device = object()
    real_device = health._device
    monkeypatch.setattr(health, "_device", lambda path: media_device if "media" in str(path) else real_device(path))
    real_usage = resources.disk_usage

    def choose(free_percent: float) -> None:
        def usage(path: Any = None) -> Any:
            if "media" in str(path):
                free = int(free_percent * 2**30)
                return SimpleNamespace(total=100 * 2**30, free=free)
            return real_usage(path)

        monkeypatch.setattr(resources, "disk_usage", usage)

    return choose


@pytest.mark.django_db
def test_low_space_on_the_media_file_system_fails_disk(client: Client, node: WorkerNode, media_elsewhere: Any) -> None:
    media_elsewhere(2.0)
    body = client.get("/health/ready").json()
    assert body["failing"] == ["disk"]
    assert body["checks"]["disk"]["detail"].startswith("only media 2.0% free")


@pytest.mark.django_db
def test_disk_reports_both_file_systems(client: Client, node: WorkerNode, media_elsewhere: Any) -> None:
    media_elsewhere(55.0)
    detail = client.get("/health/ready").json()["checks"]["disk"]["detail"]
    assert detail.startswith("data ") and ", media 55.0% free" in detail


@pytest.mark.django_db
def test_media_on_the_data_file_system_is_read_once(client: Client, node: WorkerNode, settings: Any) -> None:
    settings.MEDIA_ROOT = str(Path(settings.DATA_DIR) / "media-not-created-yet")
    assert client.get("/health/ready").json()["checks"]["disk"]["detail"].endswith("(media on the same file system)")
