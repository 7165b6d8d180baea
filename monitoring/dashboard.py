"""The dashboard's data: everything the staff page draws for one time range, as one JSON document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from generation import stats
from imagegen import __version__
from imagegen.shared_cache import shared_figures
from monitoring import selectors
from monitoring.availability import availability_summary
from monitoring.health import STARTED_AT
from monitoring.models import SystemSample
from monitoring.services import queue_reading


def dashboard_data(*, range_name: str) -> dict[str, Any]:
    """The range's figures (shared for DASHBOARD_CACHE_SECONDS between viewers) and the live state
    (shared for DASHBOARD_LIVE_SECONDS, a second or two: concurrent viewers read it once)."""
    now = timezone.now()
    figures = shared_figures(
        f"monitoring:dashboard:{range_name}", settings.DASHBOARD_CACHE_SECONDS, lambda: _range_figures(range_name, now)
    )
    live = shared_figures("monitoring:dashboard:now", settings.DASHBOARD_LIVE_SECONDS, lambda: _live_state(now))
    return {
        **figures,
        "now": {**live["now"], "web_uptime_seconds": round(now.timestamp() - STARTED_AT)},
        "alerts": live["alerts"],
        "version": __version__,
    }


def _live_state(now: datetime) -> dict[str, Any]:
    """The queue, the workers, the last host sample and the alerts as they are now."""
    now_state = {
        **queue_reading(now=now),
        "workers": selectors.workers_status(),
        "last_sample": _sample(SystemSample.objects.first()),
    }
    return {"now": now_state, "alerts": selectors.alert_overview()}


def _range_figures(range_name: str, now: datetime) -> dict[str, Any]:
    window = selectors.Window.ending(selectors.RANGES[range_name], now)
    finished = selectors.finished_in(window)
    return {
        "range": range_name,
        "generated_at": now.isoformat(),
        "labels": window.labels(),
        "step_minutes": window.step_minutes,
        "requests": selectors.request_series(window),
        "system": selectors.system_series(window),
        "generations": selectors.generation_series(window, finished),
        "tables": {
            "slowest_routes": selectors.slowest_routes(window.start),
            "top_users": selectors.top_users(window.start, finished=finished),
            "providers": selectors.provider_table(window.start, finished),
            "comparisons": stats.comparison_configurations(),
        },
        "rate_limited": selectors.rate_limited_total(window.start),
        "usage": selectors.usage(window.start, finished),
        "cache": selectors.result_cache(window.start, finished),
        "sweeper": selectors.event_totals(window.start, "sweeper."),
        "tasks": selectors.event_totals(window.start, "tasks."),
        "availability": availability_summary(now=now),
    }


def _sample(sample: SystemSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {
        "taken_at": sample.taken_at.isoformat(),
        "cpu_percent": sample.cpu_percent,
        "memory_percent": sample.memory_percent,
        "load_1": sample.load_1,
        "web_rss_bytes": sample.web_rss_bytes,
        "worker_rss_bytes": sample.worker_rss_bytes,
        "disk_free_bytes": sample.disk_free_bytes,
        "disk_total_bytes": sample.disk_total_bytes,
    }
