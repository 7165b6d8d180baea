"""Concurrent dashboard viewers and scrapers share one computation of the figures for a few seconds."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from generation.models import Generation
from monitoring.prometheus import render_metrics


@pytest.mark.django_db
def test_the_dashboard_shares_its_range_figures_but_shows_the_queue_as_it_is_now(
    client: Client, staff: Any, make_batch: Any, settings: Any
) -> None:
    settings.DASHBOARD_CACHE_SECONDS = 10
    client.force_login(staff)
    make_batch()
    first = client.get("/monitoring/data?range=hour").json()
    make_batch(run=False)  # two more images waiting
    second = client.get("/monitoring/data?range=hour").json()
    assert second["generations"] == first["generations"]  # the range figures, shared for 10 s
    assert second["generated_at"] == first["generated_at"]
    assert second["now"]["queued"] == first["now"]["queued"] + 2  # the live state, fresh


@pytest.mark.django_db
def test_the_live_state_is_shared_for_its_own_few_seconds(
    client: Client, staff: Any, make_batch: Any, settings: Any
) -> None:
    settings.DASHBOARD_LIVE_SECONDS = 2
    client.force_login(staff)
    first = client.get("/monitoring/data?range=hour").json()
    make_batch(run=False)
    assert client.get("/monitoring/data?range=hour").json()["now"]["queued"] == first["now"]["queued"]
    cache.delete("monitoring:dashboard:now")  # as when the two seconds are over
    assert client.get("/monitoring/data?range=hour").json()["now"]["queued"] == first["now"]["queued"] + 2


@pytest.mark.django_db
def test_scrapes_within_the_metrics_seconds_get_the_same_text(settings: Any, make_batch: Any) -> None:
    settings.METRICS_CACHE_SECONDS = 5
    first = render_metrics()
    make_batch()
    assert Generation.objects.filter(status="succeeded").exists()
    assert render_metrics() == first
    settings.METRICS_CACHE_SECONDS = 0
    assert render_metrics() != first
