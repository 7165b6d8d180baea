"""Readiness against a real qcluster: frozen workers are a stall, a killed django-q monitor stops results."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from generation.models import Batch, BatchStatus, GenerationStatus, WorkerNode
from monitoring import health
from tests.integration.cluster import cluster_env, running_cluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def pids_in_log(log: Path, pattern: str, count: int) -> list[int]:
    found: list[int] = []

    def enough() -> bool:
        found[:] = [int(pid) for pid in re.findall(pattern, log.read_text())]
        return len(found) >= count

    wait_for(enough, timeout=60)
    return found[-count:]


def failing(name: str) -> bool:
    return not health.run_checks([name])[name].ok


def test_workers_that_take_nothing_while_their_node_heartbeats_fail_progress(
    make_batch: Any, real_queue: None, tmp_path: Path, settings: Any
) -> None:
    settings.STALL_ALERT_SECONDS = 3
    log = tmp_path / "cluster.log"
    env = cluster_env(tmp_path, Q_WORKERS="2", SCHEDULER_DISPATCH_LEASE_SECONDS="2")
    with running_cluster(env, log):
        workers = pids_in_log(log, r"ready for work at (\d+)", 2)
        wait_for(WorkerNode.objects.exists, timeout=30)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)  # the processes live on, the node's loop heartbeats, nothing is taken
        try:
            batch = make_batch(prompts=["a red fox", "a lighthouse", "山水畫"])
            wait_for(lambda: failing("progress"), timeout=60)
            response = Client().get("/health/ready")
            assert response.status_code == 503 and "progress" in response.json()["failing"]
            assert response.json()["checks"]["progress"]["detail"].startswith("stalled: 3 image(s) waiting")
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        wait_for(lambda: Batch.objects.get(pk=batch.pk).status == BatchStatus.COMPLETED, timeout=60)
        assert not failing("progress")


def test_a_killed_django_q_monitor_fails_results_while_finished_tasks_wait(
    make_batch: Any, real_queue: None, tmp_path: Path, settings: Any
) -> None:
    settings.ENGINE_RESULTS_STALL_SECONDS = 5  # what this process (the web side) calls stalled
    batch = make_batch(prompts=[f"prompt {n}" for n in range(60)])
    log = tmp_path / "cluster.log"
    # The node restarts a wedged cluster after ENGINE_RESULTS_STALL_SECONDS: long enough here to look at it.
    env = cluster_env(tmp_path, Q_WORKERS="2", LOCAL_PROVIDER_DELAY="0.3", ENGINE_RESULTS_STALL_SECONDS="120")
    with running_cluster(env, log):
        (monitor,) = pids_in_log(log, r"monitoring at (\d+)", 1)
        wait_for(lambda: batch.generations.filter(status=GenerationStatus.SUCCEEDED).exists(), timeout=60)
        assert not failing("results")
        os.kill(monitor, signal.SIGKILL)
        wait_for(lambda: failing("results"), timeout=60)
        response = Client().get("/health/ready")
        assert response.status_code == 503 and "results" in response.json()["failing"]
        # django-q starts a new monitor, which does not drain the old results: either way they are not saved.
        assert "not saved" in response.json()["checks"]["results"]["detail"]
