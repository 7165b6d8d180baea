"""Several real worker processes against one fake provider: the cluster-wide concurrency cap holds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakeserver import fake_server
from tests.generation.providerfakes import InFlight
from tests.integration.cluster import running_cluster

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 12
CAP = 2
CREATE_BATCH = f"""
from django.contrib.auth.models import User
from generation.services import batch_create, check_batch_request
owner = User.objects.create_user("worker-test")
spec = check_batch_request(provider="openai", model="dall-e-2", prompts=[f"p{{i}}" for i in range({IMAGES})])
batch_create(owner=owner, spec=spec)
"""
STATUS = "from generation.models import Generation; print(sorted(Generation.objects.values_list('status', flat=True)))"

pytestmark = [pytest.mark.integration]


def environment(tmp_path: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DATA_DIR=str(tmp_path),
        Q_SYNC="false",
        Q_WORKERS="6",
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=f"{url}/v1",
        OPENAI_MAX_CONCURRENCY=str(CAP),
        OPENAI_RPM="0",
        DJANGO_SETTINGS_MODULE="imagegen.settings",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_six_workers_never_exceed_the_providers_concurrency_cap(tmp_path: Path) -> None:
    counter = InFlight()
    with fake_server() as server:
        server.route("POST", "/v1/images/generations", counter)
        env = environment(tmp_path, server.url)
        manage(env, "migrate", "-v0")
        manage(env, "shell", "-c", CREATE_BATCH)
        with running_cluster(env, tmp_path / "cluster.log"):
            deadline = time.monotonic() + 90
            while len(server.requests) < IMAGES and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)  # let the last results be written
    assert len(server.requests) == IMAGES
    assert counter.peak == CAP  # reached (the workers did run in parallel) and never exceeded
    assert manage(env, "shell", "-c", STATUS).strip().splitlines()[-1] == str(["succeeded"] * IMAGES)
