"""Two platform nodes (web + qcluster each, own DATA_DIR) on one PostgreSQL, one Redis and one S3 store.

Submit through one node, kill it mid-batch, and the other finishes every image exactly once and
serves all of them, including those the dead node made; provider caps and API rate limits are
counted once for the whole cluster, not per node.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connection

from accounts.services import token_create
from generation.models import Batch, GenerationStatus
from tests.fakeserver import fake_server
from tests.generation.providerfakes import InFlight
from tests.integration.cluster import ROOT, cluster_env, kill_group, running_cluster, wait_for
from tests.objectstore import ObjectStore, free_port, s3_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not django_settings.REDIS_URL,
        reason="several nodes need a shared PostgreSQL and Redis: runs in .ci/run's PostgreSQL + Redis pass",
    ),
]

# A killed node's claimed images are handed on once its heartbeat is this old (default 15 s).
FAST_RECOVERY = {"LOCAL_PROVIDER_DELAY": "0.4", "WORKER_DEAD_AFTER_SECONDS": "6"}


@dataclass
class Node:
    name: str
    env: dict[str, str]
    data_dir: Path
    port: int = 0
    web: subprocess.Popen[bytes] | None = None
    cluster: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL the whole node, web and workers, as in a power cut."""
        for process in (self.web, self.cluster):
            if process is not None:
                kill_group(process, signal.SIGKILL)
                process.wait()


def node(tmp_path: Path, name: str, store: ObjectStore, **overrides: str) -> Node:
    data_dir = tmp_path / name
    data_dir.mkdir()
    env = cluster_env(
        data_dir,
        **{
            "MEDIA_ROOT": str(data_dir / "media"),  # never used with a bucket: nothing may land on a node's disk
            "RATE_LIMIT_KEY_PREFIX": f"two-nodes-{uuid.uuid4().hex}",
            **store.environment(),
            **overrides,
        },
    )
    return Node(name=name, env=env, data_dir=data_dir)


@contextmanager
def running_web(node: Node) -> Iterator[Node]:
    """Serve the node's web application with waitress, as in production; stopped on exit."""
    node.port = free_port()
    with (node.data_dir / "web.log").open("ab") as log:
        node.web = subprocess.Popen(
            [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{node.port}", "imagegen.wsgi:application"],
            cwd=ROOT, env=node.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: _answers(f"{node.url}/health/live"), timeout=60)
        yield node
    finally:
        kill_group(node.web, signal.SIGTERM)
        try:
            node.web.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(node.web, signal.SIGKILL)
            node.web.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def started(stack: ExitStack, node: Node, *, web: bool = True, cluster: bool = True) -> Node:
    """Start the node's web server and/or worker cluster; `stack` stops them."""
    if web:
        stack.enter_context(running_web(node))
    if cluster:
        node.cluster = stack.enter_context(running_cluster(node.env, node.data_dir / "cluster.log"))
    return node


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    with s3_server() as running:
        yield running


@pytest.fixture
def bearer(owner: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_create(user=owner, name='two nodes').secret}"}


def test_a_node_killed_mid_batch_leaves_the_other_to_finish_and_serve_every_image_once(
    real_queue: None, store: ObjectStore, bearer: dict[str, str], tmp_path: Path
) -> None:
    total = 12
    a = node(tmp_path, "node-a", store, Q_WORKERS="2", **FAST_RECOVERY)
    b = node(tmp_path, "node-b", store, Q_WORKERS="2", **FAST_RECOVERY)
    with ExitStack() as stack:
        started(stack, a, cluster=False)
        started(stack, b)
        submitted = httpx.post(
            f"{b.url}/api/v1/batches/",
            headers=bearer,
            json={"name": "兩個節點", "provider": "local", "prompts": [f"節點 {n} 🌊" for n in range(total)],
                  "width": 256, "height": 256},
            timeout=30,
        )  # fmt: skip
        assert submitted.status_code == 201, submitted.text
        batch = Batch.objects.get(pk=submitted.json()["id"])
        generations = batch.generations.all()
        wait_for(
            lambda: (
                generations.filter(status=GenerationStatus.SUCCEEDED).count() >= 2
                and generations.filter(status=GenerationStatus.RUNNING).exists()
            ),
            timeout=60,
        )
        a.cluster = stack.enter_context(running_cluster(a.env, a.data_dir / "cluster.log"))
        b.kill()  # node B (web and workers) dies holding images it had started
        wait_for(lambda: _status(a, batch.pk, bearer) == "completed", timeout=120)

        listed = httpx.get(f"{a.url}/api/v1/batches/{batch.pk}/generations/", headers=bearer).json()
        assert len(listed["results"]) == total
        for item in listed["results"]:
            image = httpx.get(f"{a.url}/api/v1/generations/{item['id']}/image/", headers=bearer, timeout=30)
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
            key = batch.generations.get(pk=item["id"]).image.name
            stored = store.client().get_object(Bucket=store.bucket, Key=key)["Body"].read()
            assert image.content == stored

    finished = list(batch.generations.all())
    assert {g.status for g in finished} == {GenerationStatus.SUCCEEDED}
    assert any(g.attempts > 1 for g in finished), "the kill should have interrupted at least one image"
    referenced = {g.image.name for g in finished}
    assert len(referenced) == total  # one image per generation: nothing made twice
    for orphan in set(store.keys(f"images/{batch.pk}/")) - referenced:  # only an interrupted attempt's file
        generation = next(g for g in finished if str(g.pk) in orphan)
        assert not orphan.endswith(f"-{generation.attempts}.png")
    assert not any((n.data_dir / "media").exists() for n in (a, b))  # nothing on a node's own disk


def _status(node: Node, batch_id: object, bearer: dict[str, str]) -> str:
    return str(httpx.get(f"{node.url}/api/v1/batches/{batch_id}/", headers=bearer, timeout=10).json()["status"])


def test_the_api_rate_limit_counts_requests_to_every_node_together(
    store: ObjectStore, bearer: dict[str, str], tmp_path: Path
) -> None:
    shared = {"API_RATE_LIMIT": "6/min", "RATE_LIMIT_KEY_PREFIX": f"two-nodes-{uuid.uuid4().hex}"}
    a = node(tmp_path, "node-a", store, **shared)
    b = node(tmp_path, "node-b", store, **shared)
    with ExitStack() as stack:
        started(stack, a, cluster=False)
        started(stack, b, cluster=False)
        codes = [httpx.get(f"{n.url}/api/v1/batches/", headers=bearer).status_code for n in (a, b) * 4]
    assert codes == [200] * 6 + [429] * 2


def test_a_providers_concurrency_cap_holds_across_nodes(
    real_queue: None, store: ObjectStore, make_batch, tmp_path: Path, settings
) -> None:
    cap, images = 2, 12
    counter = InFlight()
    with fake_server() as server, ExitStack() as stack:
        server.route("POST", "/v1/images/generations", counter)
        provider = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{server.url}/v1"}
        settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = provider["OPENAI_API_KEY"], provider["OPENAI_BASE_URL"]
        limits = {"OPENAI_MAX_CONCURRENCY": str(cap), "OPENAI_RPM": "0", "Q_WORKERS": "3"}
        batch = make_batch(provider="openai", model="dall-e-2", prompts=[f"p{n}" for n in range(images)])
        for name in ("node-a", "node-b"):
            started(stack, node(tmp_path, name, store, **provider, **limits), web=False)
        wait_for(lambda: batch.generations.filter(status=GenerationStatus.SUCCEEDED).count() == images, timeout=90)
    assert len(server.requests) == images
    assert counter.peak == cap  # six workers on two nodes ran in parallel, and never more than the cap
