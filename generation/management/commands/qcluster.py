"""`manage.py qcluster`: django-q2's cluster, run as an ImageGen node that watches over itself.

Besides starting django-q's workers, the node's main process loops every ENGINE_TICK_SECONDS:
it writes its heartbeat, hands on claims of dead workers (its own and other nodes'), repairs
batches left open, dispatches due work to free workers, and checks that django-q's monitor
still processes results. A dead or wedged monitor (its result queue grows and never shrinks)
gets the whole cluster killed and started again in place.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import psutil
from django.conf import settings
from django.db import connections
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand
from django_q.status import Stat

from generation import engine, runner, tasks

logger = logging.getLogger("generation.engine")


class Command(DjangoQCommand):
    help = "Starts an ImageGen worker node: a django-q2 cluster plus its liveness and dispatch loop."

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SECRET_KEY  # noqa: B018 - tasks are signed with it: fail early when it is missing
        node = engine.Node(id=engine.new_node_id(), workers=int(str(settings.Q_CLUSTER.get("workers") or 1)))
        os.environ[runner.NODE_ENV] = node.id  # inherited by the worker processes
        node.heartbeat()
        if options.get("run_once"):
            cluster = self._start_cluster()
            cluster.stop()
            node.leave()
            return
        NodeLoop(node).run()


class NodeLoop:
    def __init__(self, node: engine.Node) -> None:
        self.node = node
        self.stopping = False
        self.backlog_since: float | None = None
        self.backlog_size = 0
        self.ticks = 0

    def run(self) -> None:
        cluster = _start_cluster()
        self._handle_signals(cluster)
        try:
            while not self.stopping:
                if not cluster.sentinel.is_alive():
                    if self.stopping:
                        break
                    logger.error("The django-q cluster died; starting it again")
                    cluster = self._restart(cluster)
                elif self._monitor_wedged(cluster):
                    logger.error("django-q's monitor stopped processing results; restarting the cluster")
                    cluster = self._restart(cluster)
                self._tick()
                time.sleep(settings.ENGINE_TICK_SECONDS)
        finally:
            if cluster.sentinel and cluster.sentinel.is_alive():
                cluster.stop()
            self._quietly(self.node.leave)

    def _handle_signals(self, cluster: Cluster) -> None:
        def stop(signum: int, frame: Any) -> None:
            self.stopping = True
            cluster.sig_handler(signum, frame)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _tick(self) -> None:
        self.ticks += 1
        self._quietly(self.node.heartbeat)
        repair = self.ticks % settings.ENGINE_REPAIR_EVERY_TICKS == 0
        self._quietly(lambda: engine.maintain(node=self.node.id, repair=repair))
        self._quietly(tasks.dispatch_now)
        self._quietly(tasks.webhooks_dispatch)

    def _quietly(self, step: Any) -> None:
        """A failing step (database restarting, Redis down) is logged; the loop goes on."""
        try:
            step()
        except Exception:
            logger.exception("Node loop step %s failed", getattr(step, "__name__", step))
            connections.close_all()

    def _monitor_wedged(self, cluster: Cluster) -> bool:
        stat = Stat.get(pid=cluster.pid, cluster_id=cluster.cluster_id)
        backlog = int(getattr(stat, "done_q_size", 0) or 0) if stat else 0
        monitor_alive = bool(stat and stat.monitor and engine.pid_alive(stat.monitor))
        now = time.monotonic()
        if backlog == 0 or backlog < self.backlog_size:
            self.backlog_since = None
        elif self.backlog_since is None:
            self.backlog_since = now
        self.backlog_size = backlog
        stalled = now - self.backlog_since if self.backlog_since is not None else 0.0
        self.node.state = {
            "monitor_alive": monitor_alive,
            "results_backlog": backlog,
            "results_stalled_seconds": round(stalled, 1),
            "cluster_id": str(cluster.cluster_id),
        }
        return stalled > settings.ENGINE_RESULTS_STALL_SECONDS

    def _restart(self, cluster: Cluster) -> Cluster:
        _kill_tree(cluster.sentinel.pid if cluster.sentinel else None)
        self.backlog_since, self.backlog_size = None, 0
        fresh = _start_cluster()
        self._handle_signals(fresh)
        return fresh


def _start_cluster() -> Cluster:
    connections.close_all()  # the cluster forks: children must not share this process's connections
    cluster = Cluster()
    cluster.start()
    return cluster


def _kill_tree(pid: int | None) -> None:
    if not pid:
        return
    try:
        root = psutil.Process(pid)
        processes = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(processes, timeout=10)
