"""The staff dashboard and its data endpoint: access rules, ranges and the figures it shows."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from monitoring.services import system_sample_record


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    response = client.get("/monitoring/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.get("/monitoring/data").status_code == 401


@pytest.mark.django_db
def test_users_who_are_not_staff_get_not_found(client: Client, owner: Any) -> None:
    client.force_login(owner)
    assert client.get("/monitoring/").status_code == 404
    assert client.get("/monitoring/data").status_code == 404


@pytest.mark.django_db
def test_staff_see_the_page_with_the_local_chart_library(client: Client, staff: Any) -> None:
    client.force_login(staff)
    page = client.get("/monitoring/").content.decode()
    assert "monitoring/vendor/chart-4.6.1.umd.min.js" in page and "<script>" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("range_name,slots", [("hour", 60), ("day", 96), ("week", 168)])
def test_data_has_one_point_per_slot(client: Client, staff: Any, range_name: str, slots: int) -> None:
    client.force_login(staff)
    data = client.get(f"/monitoring/data?range={range_name}").json()
    assert len(data["labels"]) == slots == len(data["requests"]["p95_ms"]) == len(data["system"]["cpu_percent"])


@pytest.mark.django_db
def test_an_unknown_range_is_a_clear_400(client: Client, staff: Any) -> None:
    client.force_login(staff)
    response = client.get("/monitoring/data?range=year")
    assert response.status_code == 400 and "hour, day or week" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_data_reflects_generations_users_and_samples(client: Client, staff: Any, make_batch: Any) -> None:
    make_batch(negative_prompt="blurry")
    system_sample_record()
    client.force_login(staff)
    data = client.get("/monitoring/data?range=hour").json()
    assert sum(data["generations"]["images_per_minute"]) == 2
    assert data["tables"]["top_users"][0] == {"user": "owner", "images": 2, "failed": 0, "batches": 1, "cost_usd": 0.0}
    assert data["tables"]["providers"][0]["calls"] == 2
    assert data["usage"]["batches_by_source"] == {"api": 1} and data["usage"]["features"]["negative_prompt"] == 1
    assert data["now"]["last_sample"]["disk_total_bytes"] > 0


@pytest.mark.django_db
def test_the_page_names_alert_rules_in_the_users_language(client: Client, staff: Any) -> None:
    """The firing banner and the alert history show these labels instead of the rule keys."""
    client.force_login(staff)
    page = client.get("/monitoring/", HTTP_ACCEPT_LANGUAGE="zh-hant").content.decode()
    assert 'data-rule-stall="工作停滯"' in page
    assert 'data-rule-results-not-processed="任務結果未被儲存"' in page
    assert 'data-rule-database-not-writable="資料庫無法寫入"' in page


def test_the_workers_table_and_tile_come_from_node_heartbeats(db):
    from generation.models import WorkerNode
    from monitoring import selectors, services

    WorkerNode.objects.create(
        id="node:web-1:42:ab12cd34", host="web-1", pid=42, workers=6, state={"monitor_alive": True}
    )
    [row] = selectors.workers_status()
    assert (row["cluster"], row["host"], row["workers"], row["status"]) == ("ab12cd34", "web-1", 6, "Working")
    assert services.queue_reading()["workers_alive"] == 6
