"""Reads for the dashboard and /metrics: time series, tables and the current state, per time range."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from generation import health_stats, stats
from monitoring import resources
from monitoring.models import BUCKET_FIELDS, AlertEvent, AlertState, EventCount, RequestStats, SystemSample
from monitoring.request_metrics import percentile_ms


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


def rollup_percentile(buckets: list[int], fraction: float) -> float | None:
    """A percentile (ms) from the provider latency histogram, interpolated inside its bucket."""
    total = sum(buckets)
    if not total:
        return None
    rank, seen = fraction * total, 0
    bounds = stats.LATENCY_BUCKETS_MS
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            lower = bounds[index - 1] if index else 0.0
            if bounds[index] == float("inf"):
                return lower
            return round(lower + (bounds[index] - lower) * (rank - seen) / count, 1)
        seen += count
    return bounds[-2]


def finished_in(window: Window) -> stats.FinishedWindow:
    """What finished in the window, read once for every figure drawn from it."""
    return stats.FinishedWindow(window.start, hourly=window.step >= timedelta(hours=1))


def generation_series(window: Window, finished: stats.FinishedWindow | None = None) -> dict[str, Any]:
    """Images per minute, and per provider the p95 latency and the failures in each slot."""
    images, failed = [0] * window.slots, [0] * window.slots
    latencies: dict[str, list[list[int]]] = defaultdict(
        lambda: [[0] * len(stats.BUCKET_FIELDS) for _ in range(window.slots)]
    )
    errors: dict[str, list[int]] = defaultdict(lambda: [0] * window.slots)
    for group in (finished or finished_in(window)).by_slot():
        index = window.slot(group.start)
        if index is None:
            continue
        images[index] += group.counts["succeeded"]
        failed[index] += group.counts["failed"]
        if group.counts["failed"]:
            errors[group.provider or "?"][index] += group.counts["failed"]
        if group.counts["latency_count"] and group.provider:
            slots = latencies[group.provider]
            slots[index] = [a + b for a, b in zip(slots[index], group.tally.buckets, strict=True)]
    return {
        "images_per_minute": [round(n / window.step_minutes, 2) for n in images],
        "failed_per_minute": [round(n / window.step_minutes, 2) for n in failed],
        "provider_p95_ms": {
            name: [rollup_percentile(slot, 0.95) for slot in slots] for name, slots in latencies.items()
        },
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


def top_users(since: datetime, limit: int = 10, finished: stats.FinishedWindow | None = None) -> list[dict[str, Any]]:
    by_owner = (finished or stats.FinishedWindow(since)).by_owner()
    by_owner.pop(stats.canary_owner_id() or 0, None)  # the canary's probes are not usage
    batches: dict[int, int] = defaultdict(int)
    for batch in stats.batches_created(since):
        batches[batch["owner_id"]] += 1
    top = sorted(by_owner.items(), key=lambda item: item[1].counts["succeeded"], reverse=True)[:limit]
    names = stats.usernames(owner_id for owner_id, _tally in top)
    return [
        {
            "user": names.get(owner_id, "?"),
            "images": tally.counts["succeeded"],
            "failed": tally.counts["failed"],
            "batches": batches.get(owner_id, 0),
            "cost_usd": float(tally.cost_usd),
        }
        for owner_id, tally in top
    ]


def provider_table(since: datetime, finished: stats.FinishedWindow | None = None) -> list[dict[str, Any]]:
    """Calls, failures, 429s, retries, cost and latency per provider and model; worst first."""
    table = []
    for (provider, model), tally in (finished or stats.FinishedWindow(since)).by_model().items():
        calls = tally.finished
        if not provider or not calls:
            continue
        table.append(
            {
                "provider": provider,
                "model": model,
                "calls": calls,
                "failed": tally.counts["failed"],
                "failure_rate": round(100 * tally.counts["failed"] / calls, 1),
                "rate_limited": tally.counts["rate_limited"],
                "retries": tally.counts["retries"],
                "cost_usd": round(float(tally.cost_usd), 4),
                "p50_ms": rollup_percentile(tally.buckets, 0.5),
                "p95_ms": rollup_percentile(tally.buckets, 0.95),
                "errors": dict(tally.errors),
            }
        )
    return sorted(table, key=lambda r: (r["failure_rate"], r["calls"]), reverse=True)


def result_cache(since: datetime, finished: stats.FinishedWindow | None = None) -> dict[str, Any]:
    """Images the result cache served in the range, its hit rate and the provider cost it saved."""
    made = hits = 0
    saved = 0.0
    for tally in (finished or stats.FinishedWindow(since)).by_model().values():
        made += tally.counts["succeeded"]
        hits += tally.counts["cached"]
        saved += float(tally.saved_usd)
    return {
        "images": made,
        "hits": hits,
        "hit_rate_percent": round(100 * hits / made, 1) if made else None,
        "saved_usd": round(saved, 4),
    }


def usage(since: datetime, finished: stats.FinishedWindow | None = None) -> dict[str, Any]:
    batches = stats.batches_created(since)
    by_source: dict[str, int] = defaultdict(int)
    for batch in batches:
        by_source[batch["source"]] += 1
    per_day: dict[tuple[date, int], int] = defaultdict(int)
    canary = stats.canary_owner_id()
    for hour, owner_id, images in (finished or stats.FinishedWindow(since)).images_per_owner_per_hour():
        if owner_id == canary:
            continue
        per_day[(timezone.localdate(hour), owner_id)] += images
    names = stats.usernames(owner_id for _day, owner_id in per_day)
    busiest = sorted(per_day.items(), key=lambda item: (item[0][0], item[1]), reverse=True)[:50]
    return {
        "active_users": len({batch["owner_id"] for batch in batches}),
        "batches": len(batches),
        "batches_by_source": dict(by_source),
        "features": feature_use(batch["parameters"] for batch in batches),
        "images_per_user_per_day": [
            {"day": day.isoformat(), "user": names.get(owner_id, "?"), "images": images}
            for (day, owner_id), images in busiest
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
    """The live worker nodes from their own heartbeats (django-q's cluster stats for older clusters)."""
    now = timezone.now()
    if health_stats.worker_nodes_known():
        return [
            {
                "cluster": node.id.rsplit(":", 1)[-1],
                "host": node.host,
                "status": "Working" if node.monitor_alive is not False else "Monitor down",
                "workers": node.workers,
                "uptime_seconds": round((now - node.started_at).total_seconds()),
                "last_heartbeat_seconds": round(node.heartbeat_age_seconds, 1),
            }
            for node in health_stats.live_worker_nodes(now=now)
        ]
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
