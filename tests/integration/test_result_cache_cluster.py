"""The result cache with a real cluster: six workers, twins in one batch and a repeated batch, one fake provider."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakeserver import fake_server
from tests.integration.cluster import running_cluster
from tests.integration.test_provider_concurrency import InFlight, environment, manage

pytestmark = [pytest.mark.integration]
# Six images, three different requests (explicit seed): the provider must see three calls.
CREATE_BATCH = """
from django.contrib.auth.models import User
from generation.services import batch_create, check_batch_request
owner, _ = User.objects.get_or_create(username="cache-test")
prompts = ["a fox", "a fox", "a fox", "a cat", "a cat", "an owl"]
spec = check_batch_request(provider="openai", model="dall-e-2", prompts=prompts, seed=7)
batch_create(owner=owner, spec=spec)
"""
STATUS = """
from generation.models import Generation
rows = Generation.objects.values_list("status", "cached")
print(sum(s == "succeeded" for s, _ in rows), sum(c for _, c in rows))
"""


def wait_for(env: dict[str, str], expected: str) -> str:
    deadline = time.monotonic() + 90
    seen = ""
    while time.monotonic() < deadline:
        seen = manage(env, "shell", "-c", STATUS).strip().splitlines()[-1]
        if seen == expected:
            return seen
        time.sleep(0.5)
    return seen


def test_parallel_workers_render_each_distinct_request_once(tmp_path: Path) -> None:
    counter = InFlight()
    with fake_server() as server:
        server.route("POST", "/v1/images/generations", counter)
        env = {**environment(tmp_path, server.url), "OPENAI_MAX_CONCURRENCY": "6"}
        manage(env, "migrate", "-v0")
        manage(env, "shell", "-c", CREATE_BATCH)
        with running_cluster(env, tmp_path / "cluster.log"):
            assert wait_for(env, "6 3") == "6 3"  # every image made, the three twins copied
            assert len(server.requests) == 3
            manage(env, "shell", "-c", CREATE_BATCH)  # the same batch again: all six from the cache
            assert wait_for(env, "12 9") == "12 9"
    assert len(server.requests) == 3
