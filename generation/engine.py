"""Liveness of worker nodes and the repairs that keep work moving when processes die.

Every `manage.py qcluster` is a node: it writes a heartbeat row every tick. A claim belongs to
one worker process of one node (`Generation.worker` = "<node>|<pid>"), and it is handed on as
soon as that process is gone, not when a timeout runs out:

- a worker process that died on this node (its pid is gone or a zombie): at the next tick;
- a node whose heartbeat stopped (crash, power cut, kill -9): after WORKER_DEAD_AFTER_SECONDS,
  or at once when a new node on the same host finds the old node's process gone;
- an attempt dispatched but never started (the broker lost it): after SCHEDULER_DISPATCH_LEASE_SECONDS.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psutil
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from generation import lifecycle
from generation.models import Generation, GenerationStatus, WorkerNode

logger = logging.getLogger(__name__)


def new_node_id() -> str:
    return f"node:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


@dataclass
class Node:
    """This process's node record: heartbeat, worker count and what its own checks found."""

    id: str
    workers: int
    state: dict[str, Any] = field(default_factory=dict)

    def heartbeat(self, now: datetime | None = None) -> None:
        WorkerNode.objects.update_or_create(
            id=self.id,
            defaults={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "workers": self.workers,
                "heartbeat_at": now or timezone.now(),
                "state": self.state,
            },
        )

    def leave(self) -> None:
        """A clean stop: whatever this node still holds is handed on at once."""
        claims_release_for_nodes([self.id], reason="its node stopped")
        WorkerNode.objects.filter(id=self.id).delete()


def _split_worker(worker: str) -> tuple[str, int | None]:
    node, _sep, pid = worker.rpartition("|")
    return node, int(pid) if pid.isdigit() else None


def claims_release_dead(*, node: str | None = None, now: datetime | None = None) -> int:
    """Hand on every claim whose worker is gone. `node` is the caller's own node, whose pids it can see."""
    now = now or timezone.now()
    dead_nodes = nodes_dead(now)
    # A task handed out before a node died may sit in that node's own queue, lost with it: it is
    # handed on at once rather than after its dispatch lease (a copy still in the broker is fenced).
    lost_with_node = max(dead_nodes.values(), default=None)
    if lost_with_node is not None:
        lost_with_node += timedelta(seconds=2 * settings.ENGINE_TICK_SECONDS)
    dispatch_lease = timedelta(seconds=settings.SCHEDULER_DISPATCH_LEASE_SECONDS)
    running = Generation.objects.filter(status=GenerationStatus.RUNNING).values_list("id", "worker", "lease_expires_at")
    lost: dict[str, list[uuid.UUID]] = {}
    for generation_id, worker, lease in running:
        owner, pid = _split_worker(worker)
        if not worker and lease and lease < now:
            reason = "dispatched but never started"
        elif not worker and lease and lost_with_node and lease - dispatch_lease <= lost_with_node:
            reason = "dispatched before a node died, never started"
        elif not worker:
            reason = ""
        elif owner in dead_nodes:
            reason = "its node stopped sending heartbeats"
        elif owner == node and pid is not None and not pid_alive(pid):
            reason = f"its worker process {pid} died"
        elif lease and lease < now:
            reason = "its lease ran out"
        else:
            reason = ""
        if reason:
            lost.setdefault(reason, []).append(generation_id)
    released = sum(lifecycle.claims_release(generation_ids=ids, reason=reason) for reason, ids in lost.items())
    if dead_nodes:
        WorkerNode.objects.filter(id__in=dead_nodes).delete()
    return released


def nodes_dead(now: datetime) -> dict[str, datetime]:
    """Nodes whose heartbeat stopped, and nodes on this host whose process is gone, with their last heartbeat."""
    stale = now - timedelta(seconds=settings.WORKER_DEAD_AFTER_SECONDS)
    host = socket.gethostname()
    dead = {}
    for node_id, node_host, pid, heartbeat in WorkerNode.objects.values_list("id", "host", "pid", "heartbeat_at"):
        if heartbeat < stale or (node_host == host and pid != os.getpid() and not pid_alive(pid)):
            dead[node_id] = heartbeat
    return dead


def claims_release_for_nodes(node_ids: list[str], *, reason: str) -> int:
    prefixes = Q()
    for node_id in node_ids:
        prefixes |= Q(worker__startswith=f"{node_id}|")
    ids = Generation.objects.filter(prefixes, status=GenerationStatus.RUNNING).values_list("id", flat=True)
    return lifecycle.claims_release(generation_ids=list(ids), reason=reason)


def maintain(*, node: str | None = None, repair: bool = True) -> dict[str, int]:
    """One round of repairs: dead claims handed on, open batches closed. Safe to run anywhere, any time."""
    released = claims_release_dead(node=node)
    repaired = len(lifecycle.batches_repair()) if repair else 0
    result = {"released": released, "repaired": repaired}
    if released or repaired:
        logger.warning("Engine repaired work: %s", result)
    return result
