"""`manage.py qcluster` is ImageGen's node: it sees a wedged django-q monitor and says so."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from django.core.management import get_commands

from generation import engine
from generation.management.commands import qcluster


def test_the_qcluster_command_is_the_imagegen_node():
    assert get_commands()["qcluster"] == "generation"


@pytest.fixture
def loop(db, monkeypatch, settings):
    settings.ENGINE_RESULTS_STALL_SECONDS = 10
    clock = {"now": 1000.0}
    monkeypatch.setattr(qcluster.time, "monotonic", lambda: clock["now"])
    node_loop = qcluster.NodeLoop(engine.Node(id="node:test:1:a", workers=2))
    node_loop.clock = clock
    return node_loop


def cluster_reporting(monkeypatch, backlog: int, monitor: int | None = None):
    stat = SimpleNamespace(done_q_size=backlog, monitor=monitor or os.getpid())
    monkeypatch.setattr(qcluster.Stat, "get", staticmethod(lambda pid, cluster_id: stat))
    return SimpleNamespace(pid=1, cluster_id="c")


def test_a_result_backlog_that_never_shrinks_means_a_wedged_monitor(loop, monkeypatch):
    cluster = cluster_reporting(monkeypatch, backlog=3)
    assert not loop._monitor_wedged(cluster)
    loop.clock["now"] += 5
    cluster_reporting(monkeypatch, backlog=7)
    assert not loop._monitor_wedged(cluster)
    loop.clock["now"] += 6
    assert loop._monitor_wedged(cluster)
    assert loop.node.state["results_stalled_seconds"] == 11.0
    assert loop.node.state["monitor_alive"] is True


def test_a_backlog_that_drains_is_healthy(loop, monkeypatch):
    cluster = cluster_reporting(monkeypatch, backlog=5)
    loop._monitor_wedged(cluster)
    for backlog in (4, 2, 1, 3, 0):
        loop.clock["now"] += 6
        cluster_reporting(monkeypatch, backlog=backlog)
        assert not loop._monitor_wedged(cluster)
    assert loop.node.state["results_backlog"] == 0


def test_a_dead_monitor_is_reported(loop, monkeypatch):
    cluster = cluster_reporting(monkeypatch, backlog=0, monitor=2**22 + 12345)
    loop._monitor_wedged(cluster)
    assert loop.node.state["monitor_alive"] is False
