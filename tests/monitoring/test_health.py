"""/health: 200 when database, cache, queue and workers answer; 503 naming what does not."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage
from django_q.status import Stat, Status


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
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "queue", "workers"}
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


def test_health_and_the_portal_footer_name_the_running_version(client, db, live_cluster, owner):
    from imagegen import __version__

    assert __version__ and __version__ != "unknown"
    assert client.get("/health").json()["version"] == __version__
    client.force_login(owner)
    assert '<span class="version"' in client.get("/batches/").content.decode()
    assert __version__ in client.get("/batches/").content.decode()
