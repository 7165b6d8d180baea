"""The dashboard shows how many requests were answered 429, in total and per route."""

from __future__ import annotations

from typing import Any

from django.test import Client

from monitoring.models import RequestStats
from monitoring.request_metrics import recorder


def test_429_answers_are_counted_and_shown_on_the_dashboard(client: Client, api: Any, staff: Any, settings) -> None:
    settings.API_RATE_LIMIT = "2/min"
    recorder.take(include_current=True)
    statuses = [api.get("/api/v1/batches/").status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    recorder.flush(include_current=True)
    row = RequestStats.objects.get(route="api-batch-list", method="GET", minute__isnull=False)
    assert row.rate_limited == 3 and row.client_errors == 3 and row.count == 5
    assert RequestStats.objects.get(route="api-batch-list", minute__isnull=True).rate_limited == 3

    client.force_login(staff)
    data = client.get("/monitoring/data?range=hour").json()
    assert data["rate_limited"] == 3
    routes = {route["route"]: route for route in data["tables"]["slowest_routes"]}
    assert routes["api-batch-list"]["rate_limited"] == 3
    page = client.get("/monitoring/").content.decode()
    assert 'id="tile-rate-limited"' in page


def test_other_client_errors_are_not_counted_as_rate_limited(client: Client, db: Any) -> None:
    recorder.take(include_current=True)
    client.get("/no-such-page")
    recorder.flush(include_current=True)
    assert RequestStats.objects.get(route="unmatched", minute__isnull=False).rate_limited == 0
