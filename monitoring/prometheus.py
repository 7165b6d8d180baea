"""Prometheus exposition: metrics read at scrape time from the shared store, so every process agrees.

Web and worker processes write their measurements to the database; a scrape of any web
process renders the same totals from there, instead of per-process counters that would
each see only a part.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from generation import stats
from imagegen import __version__
from imagegen.shared_cache import shared_figures
from monitoring import resources, selectors
from monitoring.models import BUCKET_FIELDS, LATENCY_BUCKETS_MS, AlertState, RequestStats, SystemSample
from monitoring.services import queue_reading


def http_metrics() -> Iterator[Metric]:
    requests = CounterMetricFamily("imagegen_http_requests", "HTTP requests served", labels=["route", "method"])
    errors = CounterMetricFamily("imagegen_http_errors", "HTTP responses 4xx/5xx", labels=["route", "method", "class"])
    duration = HistogramMetricFamily(
        "imagegen_http_request_duration_seconds", "Time to answer a request", labels=["route", "method"]
    )
    for row in RequestStats.objects.filter(minute__isnull=True).order_by("route", "method"):
        labels = [row.route, row.method]
        requests.add_metric(labels, row.count)
        errors.add_metric([*labels, "4xx"], row.client_errors)
        errors.add_metric([*labels, "5xx"], row.server_errors)
        cumulative, buckets = 0, []
        for bound, name in zip(LATENCY_BUCKETS_MS, BUCKET_FIELDS, strict=True):
            cumulative += getattr(row, name)
            buckets.append(("+Inf" if bound == float("inf") else str(bound / 1000), cumulative))
        duration.add_metric(labels, buckets, row.duration_ms_sum / 1000)
    yield from (requests, errors, duration)


def generation_metrics() -> Iterator[Metric]:
    """All-time counters per provider and model, from the rollups (one row per user and model)."""
    by_status = CounterMetricFamily(
        "imagegen_generations", "Finished images by provider, model and status", labels=["provider", "model", "status"]
    )
    retries = CounterMetricFamily("imagegen_generation_retries", "Extra attempts", labels=["provider", "model"])
    cost = CounterMetricFamily("imagegen_generation_cost_usd", "Estimated cost in USD", labels=["provider", "model"])
    errors = CounterMetricFamily(
        "imagegen_provider_errors", "Failed images by error code", labels=["provider", "model", "code"]
    )
    latency = HistogramMetricFamily(
        "imagegen_provider_latency_seconds", "Time the provider took per image", labels=["provider", "model"]
    )
    cache_hits = CounterMetricFamily(
        "imagegen_cache_hits",
        "Images copied from the result cache instead of a provider call",
        labels=["provider", "model"],
    )
    cache_saved = CounterMetricFamily(
        "imagegen_cache_saved_usd", "Estimated provider cost the result cache saved", labels=["provider", "model"]
    )
    for (provider, model), tally in sorted(stats.totals_by_model().items()):
        if not provider:
            continue
        labels = [provider, model]
        for status in ("succeeded", "failed", "cancelled"):
            if tally.counts[status]:
                by_status.add_metric([*labels, status], tally.counts[status])
        retries.add_metric(labels, tally.counts["retries"])
        cost.add_metric(labels, float(tally.cost_usd))
        cache_hits.add_metric(labels, tally.counts["cached"])
        cache_saved.add_metric(labels, float(tally.saved_usd))
        for code, n in sorted(tally.errors.items()):
            errors.add_metric([*labels, code], n)
        if tally.counts["latency_count"]:
            latency.add_metric(labels, _cumulative(tally.buckets), tally.counts["latency_ms_sum"] / 1000)
    yield from (by_status, retries, cost, errors, latency, cache_hits, cache_saved)


def _cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    total, cumulative = 0, []  # type: int, list[tuple[str, float]]
    for bound, count in zip(stats.LATENCY_BUCKETS_MS, buckets, strict=True):
        total += count
        cumulative.append(("+Inf" if bound == float("inf") else str(bound / 1000), total))
    return cumulative


def queue_metrics() -> Iterator[Metric]:
    reading = queue_reading()
    for name, help_text in (
        ("queued", "Images waiting for a worker"),
        ("running", "Images being made now"),
        ("broker_queue", "Tasks in the broker"),
        ("workers_alive", "Worker processes in live clusters"),
    ):
        yield GaugeMetricFamily(f"imagegen_{name}", help_text, value=float(reading[name]))  # type: ignore[arg-type]
    oldest = reading["oldest_queued_seconds"]
    yield GaugeMetricFamily(
        "imagegen_oldest_queued_seconds",
        "Age of the oldest waiting image",
        value=float(oldest or 0),  # type: ignore[arg-type]
    )
    heartbeat = GaugeMetricFamily(
        "imagegen_cluster_heartbeat_age_seconds", "Since a cluster's last report", labels=["cluster"]
    )
    for cluster in selectors.workers_status():
        heartbeat.add_metric([cluster["cluster"]], cluster["last_heartbeat_seconds"])
    yield heartbeat
    repairs = GaugeMetricFamily(
        "imagegen_sweeper_repairs_last_hour", "Sweeper repairs in the last hour", labels=["action"]
    )
    for action, total in selectors.event_totals(timezone.now() - timedelta(hours=1), "sweeper.").items():
        repairs.add_metric([action], total)
    yield repairs


def system_metrics() -> Iterator[Metric]:
    disk = resources.disk_usage()
    yield GaugeMetricFamily("imagegen_disk_free_bytes", "Free space under the data directory", value=disk.free)
    yield GaugeMetricFamily("imagegen_disk_total_bytes", "Size of the data directory's file system", value=disk.total)
    sample = SystemSample.objects.first()
    if sample is not None:
        yield GaugeMetricFamily("imagegen_cpu_percent", "Host CPU use at the last sample", value=sample.cpu_percent)
        yield GaugeMetricFamily(
            "imagegen_memory_percent", "Host memory use at the last sample", value=sample.memory_percent
        )
        yield GaugeMetricFamily("imagegen_load1", "Host load average (1 min)", value=sample.load_1)
        rss = GaugeMetricFamily(
            "imagegen_process_rss_bytes", "Resident memory of this project's processes", labels=["role"]
        )
        rss.add_metric(["web"], sample.web_rss_bytes)
        rss.add_metric(["worker"], sample.worker_rss_bytes)
        yield rss


def usage_metrics() -> Iterator[Metric]:
    batches = CounterMetricFamily("imagegen_batches", "Batches created", labels=["source"])
    for source, n in sorted(stats.batch_counts_by_source().items()):
        batches.add_metric([source], n)
    yield batches
    day_ago = timezone.now() - timedelta(days=1)
    active = len({batch["owner_id"] for batch in stats.batches_created(day_ago)})
    yield GaugeMetricFamily("imagegen_active_users_24h", "Users who created a batch in the last 24 hours", value=active)
    alerts = GaugeMetricFamily("imagegen_alert_firing", "1 while an alert rule is firing", labels=["rule"])
    for state in AlertState.objects.filter(Q(firing=True)):
        alerts.add_metric([state.key], 1)
    yield alerts


def availability_metrics() -> Iterator[Metric]:
    from monitoring.availability import WINDOWS, availability

    yield GaugeMetricFamily("imagegen_slo_target_ratio", "Availability objective", value=settings.SLO_TARGET / 100)
    ratio = GaugeMetricFamily("imagegen_availability_ratio", "Share of time up (probe)", labels=["window"])
    budget = GaugeMetricFamily(
        "imagegen_error_budget_remaining_ratio", "Share of the error budget left", labels=["window"]
    )
    for name, span in WINDOWS.items():
        measured = availability(window=span, name=name)
        if measured.ratio is not None and measured.budget_remaining is not None:
            ratio.add_metric([name], measured.ratio)
            budget.add_metric([name], measured.budget_remaining)
    yield from (ratio, budget)
    yield InfoMetricFamily("imagegen_build", "The running release", value={"version": __version__})


class StoreCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        for source in (
            http_metrics,
            generation_metrics,
            queue_metrics,
            system_metrics,
            usage_metrics,
            availability_metrics,
        ):
            yield from source()


def render_metrics() -> bytes:
    """The exposition text, shared for METRICS_CACHE_SECONDS by every scraper and process."""
    return shared_figures("monitoring:metrics", settings.METRICS_CACHE_SECONDS, _exposition)


def _exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector())
    return generate_latest(registry)
