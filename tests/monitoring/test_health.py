"""/health: 200 when database, cache, queue, storage and workers answer; 503 naming what does not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

from generation.models import WorkerNode
from monitoring.models import HealthProbe


@pytest.fixture
def live_cluster():
    """Publish a cluster heartbeat the way a running qcluster does, and withdraw it afterwards."""
    stat = Stat.__new__(Stat)  # what a sentinel saves, without starting one
    Status.__init__(stat, pid=1234, cluster_id="test-cluster")
    stat.broker, stat.tob, stat.workers = None, timezone.now(), [1, 2, 3]
    broker = get_broker()
    key = Stat.get_key("test-cluster")
    broker.set_stat(key, SignedPackage.dumps(stat, True), 30)
    yield
    if broker.cache is not None and not hasattr(broker.connection, "keys"):
        broker.cache.delete(key)
    else:
        broker.connection.delete(key)  # the Redis broker keeps heartbeats in Redis itself


def test_healthy_platform_is_200_with_every_check(client, db, live_cluster):
    """No cluster has written a node heartbeat yet: django-q's own stats count."""
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "queue", "storage", "workers"}
    assert body["checks"]["workers"]["detail"] == "1 cluster(s), 3 worker process(es)"
    assert all(check["duration_ms"] >= 0 for check in body["checks"].values())


def test_no_worker_is_503_naming_workers(client, db):
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["workers"]
    assert body["checks"]["workers"]["status"] == "fail"


def test_unreachable_database_is_503_naming_database(client, db, live_cluster, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise ConnectionError("database is down")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", broken_cursor)
        response = client.get("/health")
    assert response.status_code == 503
    assert "database" in response.json()["failing"]
    assert "database is down" in response.json()["checks"]["database"]["detail"]


def test_health_is_never_cached(client, db, live_cluster):
    assert "no-cache" in client.get("/health")["Cache-Control"]


@pytest.fixture
def node(db):
    """A worker node heartbeat as the engine's qcluster writes it every 2 s."""
    return WorkerNode.objects.create(
        id="node-a", host="worker-1", pid=4321, workers=4, started_at=timezone.now() - timedelta(hours=1), state=FINE
    )


FINE = {"monitor_alive": True, "results_backlog": 0, "results_stalled_seconds": 0.0}


def test_healthy_platform_with_a_node_heartbeat_is_200(client, node):
    response = client.get("/health")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database", "cache", "queue", "storage", "workers"}
    assert response.json()["checks"]["workers"]["detail"] == "1 cluster(s), 4 worker process(es)"


def test_a_silent_node_fails_workers_even_with_django_q_stats(client, node, live_cluster, settings):
    WorkerNode.objects.update(heartbeat_at=timezone.now() - timedelta(seconds=settings.WORKER_DEAD_AFTER_SECONDS + 1))
    body = client.get("/health").json()
    assert body["failing"] == ["workers"]
    assert f"in the last {settings.WORKER_DEAD_AFTER_SECONDS} s" in body["checks"]["workers"]["detail"]


def test_unwritable_storage_fails_health_itself(client, node, settings, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = str(blocked)
    response = client.get("/health")
    assert response.status_code == 503 and response.json()["failing"] == ["storage"]


def test_a_database_that_refuses_writes_fails_health(client, node, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(HealthProbe.objects, "bulk_create", full_disk)
    response = client.get("/health")
    assert response.status_code == 503 and response.json()["failing"] == ["database"]
    detail = response.json()["checks"]["database"]["detail"]
    assert "does not take writes" in detail and "database or disk is full" in detail


def test_the_database_check_commits_a_real_write(client, node):
    client.get("/health")
    first = HealthProbe.objects.get().written_at
    client.get("/health")
    assert HealthProbe.objects.count() == 1 and HealthProbe.objects.get().written_at >= first


def test_health_and_the_portal_footer_name_the_running_version(client, node, owner):
    from imagegen import __version__

    assert __version__ and __version__ != "unknown"
    assert client.get("/health").json()["version"] == __version__
    client.force_login(owner)
    assert '<span class="version"' in client.get("/batches/").content.decode()
    assert __version__ in client.get("/batches/").content.decode()
