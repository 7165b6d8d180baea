"""GET /metrics: Prometheus text that the client library parses, guarded by METRICS_TOKEN."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from monitoring.request_metrics import RequestRecorder


def _families(client: Client, **headers: Any) -> dict[str, Any]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


@pytest.mark.django_db
def test_metrics_merge_processes_and_parse(client: Client, make_batch: Any) -> None:
    for duration in (3, 40):
        recorder = RequestRecorder()  # one per web process
        recorder.record(route="health", method="GET", status=200, duration_ms=duration)
        recorder.flush(include_current=True)
    make_batch()
    families = _families(client)
    requests = {
        s.labels["route"]: s.value for s in families["imagegen_http_requests"].samples if s.name.endswith("_total")
    }
    assert requests["health"] == 2
    buckets = {s.labels["le"]: s.value for s in families["imagegen_http_request_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["route"] == "health"}  # fmt: skip
    assert buckets["0.005"] == 1 and buckets["+Inf"] == 2
    made = [s for s in families["imagegen_generations"].samples if s.labels.get("status") == "succeeded"]
    assert made and made[0].value == 2
    assert families["imagegen_workers_alive"].samples[0].value == 0
    assert families["imagegen_disk_free_bytes"].samples[0].value > 0


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret-token"
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authenticated"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert "imagegen_queued" in _families(client, HTTP_AUTHORIZATION="Bearer s3cret-token")


@pytest.mark.django_db
def test_metrics_are_refused_in_production_without_a_token(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    settings.PRODUCTION = True
    refused = client.get("/metrics")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "metrics_disabled"


def test_check_deploy_warns_when_the_metrics_token_is_unset(settings: Any) -> None:
    from monitoring.checks import check_metrics_token

    settings.METRICS_TOKEN = ""
    assert [w.id for w in check_metrics_token(None)] == ["monitoring.W001"]
    settings.METRICS_TOKEN = "x" * 40
    assert check_metrics_token(None) == []
