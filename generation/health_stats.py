"""What health checks and alerts read about the engine: work waiting, the last finish, live worker nodes.

Monitoring reads generation data only through these functions, which return plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation.models import Generation, GenerationStatus, WorkerNode


@dataclass(frozen=True)
class LiveNode:
    """A worker node whose heartbeat is recent, with what its own checks last said."""

    id: str
    host: str
    pid: int
    workers: int
    started_at: datetime
    heartbeat_age_seconds: float
    # None when the node does not report it (an older cluster); only False means "dead".
    monitor_alive: bool | None
    results_backlog: int
    results_stalled_seconds: float


def _due_pending(now: datetime) -> QuerySet[Generation]:
    """Pending generations a worker could take now: due, and in batches neither paused nor being cancelled."""
    return Generation.objects.due(now).filter(
        status=GenerationStatus.PENDING,
        batch__paused_at__isnull=True,
        batch__cancel_requested_at__isnull=True,
    )


def pending_work_count(*, now: datetime | None = None) -> int:
    return _due_pending(now or timezone.now()).count()


def oldest_pending_due_at(*, now: datetime | None = None) -> datetime | None:
    """Since when the longest-waiting due generation could have been taken (its retry time, else its creation)."""
    oldest = _due_pending(now or timezone.now()).aggregate(at=Min(Coalesce("not_before", "created_at")))
    return oldest["at"]


def last_finished_at() -> datetime | None:
    return Generation.objects.aggregate(at=Max("finished_at"))["at"]


def live_worker_nodes(*, now: datetime | None = None) -> list[LiveNode]:
    now = now or timezone.now()
    fresh_since = now - timedelta(seconds=settings.WORKER_DEAD_AFTER_SECONDS)
    return [_live_node(node, now) for node in WorkerNode.objects.filter(heartbeat_at__gte=fresh_since)]


def worker_nodes_known() -> bool:
    """Whether any cluster has ever written a heartbeat row (clusters that predate them do not)."""
    return WorkerNode.objects.exists()


@dataclass(frozen=True)
class Running:
    """Running generations by what is happening to them."""

    in_flight: int  # a worker of a live node is on it, within its lease
    dispatched: int  # handed to the broker, no worker has started it yet, within its dispatch lease
    stuck: int  # lease ran out, or its node stopped: the engine should be handing it on
    oldest_waiting_since: datetime | None  # creation of the oldest dispatched or stuck one


def running_counts(*, live_node_ids: list[str], now: datetime | None = None) -> Running:
    now = now or timezone.now()
    running = Generation.objects.filter(status=GenerationStatus.RUNNING)
    live_worker = Q(pk__in=[])
    for node_id in live_node_ids:
        live_worker |= Q(worker__startswith=f"{node_id}|")
    leased = Q(lease_expires_at__gt=now)
    found = running.aggregate(
        total=Count("pk"),
        in_flight=Count("pk", filter=live_worker & leased),
        dispatched=Count("pk", filter=Q(worker="") & leased),
        oldest_waiting=Min("created_at", filter=~(live_worker & leased)),
    )
    in_flight, dispatched = found["in_flight"], found["dispatched"]
    return Running(
        in_flight=in_flight,
        dispatched=dispatched,
        stuck=found["total"] - in_flight - dispatched,
        oldest_waiting_since=found["oldest_waiting"],
    )


def _live_node(node: WorkerNode, now: datetime) -> LiveNode:
    state = node.state if isinstance(node.state, dict) else {}
    monitor_alive = state.get("monitor_alive")
    return LiveNode(
        id=node.id,
        host=node.host,
        pid=node.pid,
        workers=node.workers,
        started_at=node.started_at,
        heartbeat_age_seconds=round((now - node.heartbeat_at).total_seconds(), 1),
        monitor_alive=monitor_alive if isinstance(monitor_alive, bool) else None,
        results_backlog=int(_number(state.get("results_backlog"))),
        results_stalled_seconds=_number(state.get("results_stalled_seconds")),
    )


def _number(value: object) -> float:
    """A number from the node's JSON state; anything else (missing, garbled) reads as 0."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
