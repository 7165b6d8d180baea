"""Liveness and readiness: each check timed, 503 naming what failed."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from monitoring import health


@pytest.mark.django_db
def test_liveness_answers_without_dependencies(client: Client) -> None:
    body = client.get("/health/live").json()
    assert body["status"] == "ok" and "process" in body["checks"]


@pytest.mark.django_db
def test_readiness_fails_naming_the_missing_workers(client: Client) -> None:
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["workers"]
    for name in ("database", "cache", "queue", "storage", "disk", "workers"):
        assert "duration_ms" in body["checks"][name]


@pytest.mark.django_db
def test_readiness_is_ok_when_every_check_passes(client: Client, monkeypatch: Any) -> None:
    monkeypatch.setitem(health.READINESS, "workers", lambda: "1 cluster(s)")
    monkeypatch.setitem(health.CHECKS, "workers", lambda: "1 cluster(s)")
    assert client.get("/health/ready").status_code == 200


@pytest.mark.django_db
def test_unwritable_storage_and_full_disk_fail_readiness(client: Client, settings: Any, tmp_path: Any) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = str(blocked)
    settings.ALERT_DISK_FREE_PERCENT = 101
    body = client.get("/health/ready").json()
    assert {"storage", "disk"} <= set(body["failing"])
    assert "free" in body["checks"]["disk"]["detail"]


@pytest.mark.django_db
def test_health_refuses_post(client: Client) -> None:
    assert client.post("/health/ready").status_code == 405
