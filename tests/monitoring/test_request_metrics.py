"""Request timing: per-minute aggregates, merged histograms, request ids in errors and logs."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from monitoring.models import RequestStats
from monitoring.request_metrics import RequestRecorder, percentile_ms, recorder


@pytest.mark.django_db
def test_requests_are_counted_per_route_minute_and_in_the_total(client: Client) -> None:
    recorder.take(include_current=True)
    client.get("/health/live")
    client.get("/health/live")
    client.get("/no-such-page")
    recorder.flush(include_current=True)
    health = RequestStats.objects.get(route="health_live", method="GET", minute__isnull=False)
    assert health.count == 2 and health.server_errors == 0 and sum(health.buckets) == 2
    assert RequestStats.objects.get(route="health_live", minute__isnull=True).count == 2
    assert RequestStats.objects.get(route="unmatched", minute__isnull=True).client_errors == 1


@pytest.mark.django_db
def test_two_processes_add_to_the_same_rows() -> None:
    first, second = RequestRecorder(), RequestRecorder()
    first.record(route="r", method="GET", status=200, duration_ms=3)
    second.record(route="r", method="GET", status=503, duration_ms=700)
    first.flush(include_current=True)
    second.flush(include_current=True)
    row = RequestStats.objects.get(route="r", minute__isnull=False)
    assert (row.count, row.server_errors, row.duration_ms_max) == (2, 1, 700)
    assert row.le_0 == 1 and row.le_7 == 1


def test_percentile_interpolates_inside_the_bucket() -> None:
    buckets = [0] * 12
    buckets[4] = 10  # all between 50 and 100 ms
    assert percentile_ms(buckets, 0.5) == 75.0
    assert percentile_ms([0] * 12, 0.5) is None


@pytest.mark.django_db
def test_error_bodies_and_headers_carry_the_request_id(client: Client) -> None:
    response = client.get("/api/v1/batches/", HTTP_X_REQUEST_ID="abcdef123456")
    assert response.status_code == 401
    assert response["X-Request-ID"] == "abcdef123456"
    assert response.json()["error"]["request_id"] == "abcdef123456"


@pytest.mark.django_db
def test_an_unsafe_incoming_request_id_is_replaced(client: Client) -> None:
    response = client.get("/health", HTTP_X_REQUEST_ID="bad id\n")
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_one_json_log_line_per_request_with_user_and_duration(client: Client, owner, caplog) -> None:
    from monitoring.logs import JsonFormatter

    client.force_login(owner)
    with caplog.at_level("INFO", logger="imagegen.request"):
        client.get("/batches/", HTTP_X_REQUEST_ID="req-12345678")
    record = next(r for r in caplog.records if r.name == "imagegen.request")
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "generation:batch_list" and line["status"] == 200
    assert line["user_id"] == owner.pk and line["duration_ms"] > 0


@pytest.mark.django_db
def test_made_up_methods_share_one_metric_label(client: Client) -> None:
    recorder.take(include_current=True)
    for name in ["FOO", "BAR", "X" * 30, "get"]:
        client.generic(name, "/health/live")
    recorder.flush(include_current=True)
    methods = set(RequestStats.objects.values_list("method", flat=True))
    assert methods == {"OTHER", "GET"}
