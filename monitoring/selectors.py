"""Reads for the dashboard and /metrics: time series, tables and the current state, per time range."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from generation.models import Batch, Generation, GenerationStatus
from monitoring import resources
from monitoring.models import BUCKET_FIELDS, AlertEvent, AlertState, EventCount, RequestStats, SystemSample
from monitoring.request_metrics import percentile_ms

RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class TimeRange:
    name: str
    span: timedelta
    step: timedelta


RANGES = {
    "hour": TimeRange("hour", timedelta(hours=1), timedelta(minutes=1)),
    "day": TimeRange("day", timedelta(days=1), timedelta(minutes=15)),
    "week": TimeRange("week", timedelta(days=7), timedelta(hours=1)),
}


@dataclass(frozen=True)
class Window:
    start: datetime
    step: timedelta
    slots: int

    @classmethod
    def ending(cls, time_range: TimeRange, now: datetime) -> Window:
        step_seconds = time_range.step.total_seconds()
        end = datetime.fromtimestamp(
            math.floor(now.timestamp() / step_seconds) * step_seconds + step_seconds, tz=now.tzinfo
        )
        slots = int(time_range.span / time_range.step)
        return cls(start=end - time_range.step * slots, step=time_range.step, slots=slots)

    def slot(self, moment: datetime) -> int | None:
        index = int((moment - self.start) / self.step)
        return index if 0 <= index < self.slots else None

    def labels(self) -> list[str]:
        return [(self.start + self.step * i).isoformat() for i in range(self.slots)]

    @property
    def step_minutes(self) -> float:
        return self.step.total_seconds() / 60


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)], 1)


def request_series(window: Window) -> dict[str, list[Any]]:
    histograms = [[0] * len(BUCKET_FIELDS) for _ in range(window.slots)]
    errors = [0] * window.slots
    for row in RequestStats.objects.filter(minute__gte=window.start).values("minute", "server_errors", *BUCKET_FIELDS):
        index = window.slot(row["minute"])
        if index is None:
            continue
        errors[index] += row["server_errors"]
        histograms[index] = [a + row[name] for a, name in zip(histograms[index], BUCKET_FIELDS, strict=True)]
    counts = [sum(histogram) for histogram in histograms]
    return {
        "requests_per_minute": [round(count / window.step_minutes, 2) for count in counts],
        "error_rate": [round(100 * e / c, 2) if c else 0 for e, c in zip(errors, counts, strict=True)],
        "p50_ms": [percentile_ms(h, 0.5) for h in histograms],
        "p95_ms": [percentile_ms(h, 0.95) for h in histograms],
        "p99_ms": [percentile_ms(h, 0.99) for h in histograms],
    }


def system_series(window: Window) -> dict[str, list[Any]]:
    fields = ["cpu_percent", "memory_percent", "web_rss_bytes", "worker_rss_bytes", "queued", "running"]
    sums: dict[str, list[float]] = {name: [0.0] * window.slots for name in fields}
    seen, oldest = [0] * window.slots, [None] * window.slots  # type: list[int], list[float | None]
    for sample in SystemSample.objects.filter(taken_at__gte=window.start).values(
        "taken_at", "oldest_queued_seconds", *fields
    ):
        index = window.slot(sample["taken_at"])
        if index is None:
            continue
        seen[index] += 1
        for name in fields:
            sums[name][index] += sample[name]
        age = sample["oldest_queued_seconds"]
        oldest[index] = max(oldest[index] or 0.0, age) if age is not None else oldest[index]
    series: dict[str, list[Any]] = {
        name: [round(total / n, 1) if n else None for total, n in zip(sums[name], seen, strict=True)] for name in fields
    }
    series["oldest_queued_seconds"] = oldest
    return series


def generation_series(window: Window) -> dict[str, Any]:
    """Images per minute, and per provider the p95 latency and the failures in each slot."""
    images, failed = [0] * window.slots, [0] * window.slots
    latencies: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in range(window.slots)])
    errors: dict[str, list[int]] = defaultdict(lambda: [0] * window.slots)
    rows = Generation.objects.filter(finished_at__gte=window.start).exclude(status=GenerationStatus.CANCELLED)
    for finished_at, status, provider, latency in rows.values_list(
        "finished_at", "status", "provider", "provider_latency_ms"
    ).iterator():
        index = window.slot(finished_at) if finished_at else None
        if index is None:
            continue
        if status == GenerationStatus.SUCCEEDED:
            images[index] += 1
        else:
            failed[index] += 1
            errors[provider or "?"][index] += 1
        if latency is not None and provider:
            latencies[provider][index].append(latency)
    return {
        "images_per_minute": [round(n / window.step_minutes, 2) for n in images],
        "failed_per_minute": [round(n / window.step_minutes, 2) for n in failed],
        "provider_p95_ms": {name: [_percentile(slot, 0.95) for slot in slots] for name, slots in latencies.items()},
        "provider_errors": dict(errors),
    }


def slowest_routes(since: datetime, limit: int = 10) -> list[dict[str, Any]]:
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in RequestStats.objects.filter(minute__gte=since).values():
        entry = merged.setdefault(
            (row["route"], row["method"]),
            {"count": 0, "errors": 0, "sum": 0.0, "max": 0.0, "h": [0] * len(BUCKET_FIELDS)},
        )
        entry["count"] += row["count"]
        entry["errors"] += row["server_errors"]
        entry["sum"] += row["duration_ms_sum"]
        entry["max"] = max(entry["max"], row["duration_ms_max"])
        entry["h"] = [a + row[name] for a, name in zip(entry["h"], BUCKET_FIELDS, strict=True)]  # type: ignore[literal-required]
    table = [
        {
            "route": route,
            "method": method,
            "count": e["count"],
            "server_errors": e["errors"],
            "mean_ms": round(e["sum"] / e["count"], 1),
            "p95_ms": percentile_ms(e["h"], 0.95),
            "max_ms": round(e["max"], 1),
        }
        for (route, method), e in merged.items()
        if e["count"]
    ]
    return sorted(table, key=lambda r: (r["p95_ms"] or 0, r["mean_ms"]), reverse=True)[:limit]


def top_users(since: datetime, limit: int = 10) -> list[dict[str, Any]]:
    rows = (
        Generation.objects.filter(finished_at__gte=since)
        .exclude(batch__owner__username=settings.CANARY_USERNAME)
        .values("batch__owner__username")
        .annotate(
            images=Count("id", filter=Q(status=GenerationStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=GenerationStatus.FAILED)),
            batches=Count("batch", distinct=True),
            cost=Sum("cost_usd"),
        )
        .order_by("-images")[:limit]
    )
    return [
        {
            "user": r["batch__owner__username"],
            "images": r["images"],
            "failed": r["failed"],
            "batches": r["batches"],
            "cost_usd": float(r["cost"] or 0),
        }
        for r in rows
    ]


def provider_table(since: datetime) -> list[dict[str, Any]]:
    """Calls, failures, 429s, retries, cost and latency per provider and model; worst first."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    rows = (
        Generation.objects.filter(finished_at__gte=since)
        .exclude(provider="")
        .exclude(status=GenerationStatus.CANCELLED)
    )
    for provider, model, status, code, attempts, latency, cost in rows.values_list(
        "provider", "model", "status", "error_code", "attempts", "provider_latency_ms", "cost_usd"
    ).iterator():
        entry = groups.setdefault(
            (provider, model),
            {
                "calls": 0,
                "failed": 0,
                "rate_limited": 0,
                "retries": 0,
                "cost": 0.0,
                "latencies": [],
                "codes": defaultdict(int),
            },
        )
        entry["calls"] += 1
        entry["retries"] += max(0, attempts - 1)
        entry["cost"] += float(cost or 0)
        if latency is not None:
            entry["latencies"].append(latency)
        if status == GenerationStatus.FAILED:
            entry["failed"] += 1
            entry["codes"][code or "unknown"] += 1
        entry["rate_limited"] += code == RATE_LIMITED
    table = [
        {
            "provider": provider,
            "model": model,
            "calls": e["calls"],
            "failed": e["failed"],
            "failure_rate": round(100 * e["failed"] / e["calls"], 1),
            "rate_limited": e["rate_limited"],
            "retries": e["retries"],
            "cost_usd": round(e["cost"], 4),
            "p50_ms": _percentile(e["latencies"], 0.5),
            "p95_ms": _percentile(e["latencies"], 0.95),
            "errors": dict(e["codes"]),
        }
        for (provider, model), e in groups.items()
    ]
    return sorted(table, key=lambda r: (r["failure_rate"], r["calls"]), reverse=True)


def usage(since: datetime) -> dict[str, Any]:
    batches = Batch.objects.filter(created_at__gte=since).exclude(owner__username=settings.CANARY_USERNAME)
    by_source = dict(batches.values_list("source").annotate(n=Count("id")).values_list("source", "n"))
    per_day = (
        Generation.objects.filter(finished_at__gte=since, status=GenerationStatus.SUCCEEDED)
        .exclude(batch__owner__username=settings.CANARY_USERNAME)
        .annotate(day=TruncDate("finished_at"))
        .values("day", "batch__owner__username")
        .annotate(images=Count("id"))
        .order_by("-day", "-images")[:50]
    )
    return {
        "active_users": batches.values("owner").distinct().count(),
        "batches": batches.count(),
        "batches_by_source": by_source,
        "features": feature_use(batches.values_list("parameters", flat=True)),
        "images_per_user_per_day": [
            {"day": row["day"].isoformat(), "user": row["batch__owner__username"], "images": row["images"]}
            for row in per_day
        ],
    }


def feature_use(parameters: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many batches used each optional feature of the batch form and API."""
    features = {"negative_prompt": 0, "fixed_seed": 0, "several_images_per_prompt": 0, "prompt_template": 0}
    for params in parameters:
        features["negative_prompt"] += bool(params.get("negative_prompt"))
        features["fixed_seed"] += params.get("seed") is not None
        features["several_images_per_prompt"] += (params.get("images_per_prompt") or 1) > 1
        features["prompt_template"] += bool(params.get("template"))
    return features


def event_totals(since: datetime, prefix: str) -> dict[str, int]:
    rows = (
        EventCount.objects.filter(minute__gte=since, name__startswith=prefix)
        .values("name")
        .annotate(total=Sum("value"))
    )
    return {row["name"].removeprefix(prefix): row["total"] for row in rows}


def workers_status() -> list[dict[str, Any]]:
    now = timezone.now()
    return [
        {
            "cluster": str(stat.cluster_id),
            "host": stat.host,
            "status": stat.status,
            "workers": len(stat.workers),
            "uptime_seconds": round(stat.uptime()),
            "last_heartbeat_seconds": round((now - stat.timestamp).total_seconds(), 1),
        }
        for stat in resources.live_clusters()
    ]


def alert_overview(limit: int = 20) -> dict[str, Any]:
    firing = AlertState.objects.filter(firing=True)
    return {
        "firing": [
            {"rule": s.key, "since": s.since.isoformat() if s.since else None, "message": s.message} for s in firing
        ],
        "history": [
            {
                "rule": e.key,
                "kind": e.kind,
                "message": e.message,
                "time": e.created_at.isoformat(),
                "delivered": e.delivered,
                "delivery_errors": e.delivery_errors,
            }
            for e in AlertEvent.objects.all()[:limit]
        ],
    }
