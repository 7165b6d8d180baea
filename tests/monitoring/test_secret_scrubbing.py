"""No credential sent to a failing request reaches Sentry or the log file."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from django.db import DatabaseError

from monitoring.logs import JsonFormatter
from monitoring.sentry import sentry_init
from tests.fakeserver import Reply, fake_server

# Built at run time so the values appear nowhere in this file's source lines (Sentry sends those).
PASSWORD_VALUE = "-".join(["hunter2", "pw", "x"])
PROVIDER_KEY = "-".join(["sk", "live0123456789abcdefghij"])
RESET_TOKEN = "-".join(["c5xq1k", "0f1e2d3c4b5a69788796"])


@pytest.fixture
def captured(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Sentry pointed at a local fake endpoint, and the root logger writing JSON lines to a file."""
    log_file = tmp_path / "imagegen.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    with fake_server() as server:
        server.route("POST", "/api/1/envelope/", Reply(200, {"id": "x"}))
        host = server.url.removeprefix("http://")
        sentry_init(dsn=f"http://publickey@{host}/1", environment="test", release=None)
        result: dict[str, Any] = {"server": server, "log": log_file}
        yield result
        sentry_sdk.init()
    logging.getLogger().removeHandler(handler)


def _sent_and_logged(captured: dict[str, Any]) -> str:
    sentry_sdk.flush(timeout=5)
    bodies = [r.body for r in captured["server"].requests]
    assert bodies, "the failing request made no Sentry event"
    sent = "".join((gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b).decode() for b in bodies)
    return sent + captured["log"].read_text(encoding="utf-8")


def _break_the_database(monkeypatch: Any, target: str) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("connection to server lost")

    monkeypatch.setattr(target, fail)


@pytest.mark.django_db(transaction=True)
def test_a_bearer_token_checked_when_the_database_failed_is_not_sent(captured, client, owner, monkeypatch):
    from accounts.services import token_create

    secret = token_create(user=owner, name="t").secret
    _break_the_database(monkeypatch, "accounts.services.ApiToken.objects.select_related")
    response = client.get("/api/v1/batches/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 500
    text = _sent_and_logged(captured)
    _prefix, _sep, private_part = secret.removeprefix("ig_").partition("_")  # it may hold "_" itself
    assert secret not in text and private_part not in text


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_password_and_a_provider_key_in_a_failing_body_are_not_sent(
    captured, client, owner, monkeypatch, content_type
):
    _break_the_database(monkeypatch, "accounts.api.login_check_password")
    fields = {"username": "owner", "password": PASSWORD_VALUE, "note": PROVIDER_KEY}
    body = json.dumps(fields) if content_type == "application/json" else "&".join(f"{k}={v}" for k, v in fields.items())
    response = client.generic("POST", "/api/v1/auth/token/", body, content_type=content_type)
    assert response.status_code == 500
    text = _sent_and_logged(captured)
    assert PASSWORD_VALUE not in text and PROVIDER_KEY not in text


@pytest.mark.django_db(transaction=True)
def test_a_token_in_a_query_string_is_not_sent(captured, client, owner, monkeypatch):
    from accounts.services import token_create

    secret = token_create(user=owner, name="t").secret
    _break_the_database(monkeypatch, "generation.api.selectors.batch_list")
    client.force_login(owner)
    response = client.get(f"/api/v1/batches/?token={secret}&api_key={PROVIDER_KEY}")
    assert response.status_code == 500
    text = _sent_and_logged(captured)
    assert secret not in text and PROVIDER_KEY not in text


@pytest.mark.django_db(transaction=True)
def test_a_password_reset_link_is_not_logged(captured, client, owner):
    client.get(f"/accounts/password/reset/MQ/{RESET_TOKEN}/")
    sentry_sdk.capture_message("after a reset link")
    text = _sent_and_logged(captured)
    assert RESET_TOKEN not in text
