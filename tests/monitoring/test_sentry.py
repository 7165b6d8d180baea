"""Sentry: an error reaches a local endpoint, with passwords and tokens scrubbed."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
import sentry_sdk

from monitoring.sentry import scrub, sentry_init
from tests.fakeserver import Reply, fake_server


@pytest.fixture
def sentry() -> Iterator[None]:
    yield
    sentry_sdk.init()  # switch reporting off again for the other tests


def test_an_error_arrives_without_secrets(sentry: None) -> None:
    with fake_server() as server:
        server.route("POST", "/api/1/envelope/", Reply(200, {"id": "x"}))
        host = server.url.removeprefix("http://")
        sentry_init(dsn=f"http://publickey@{host}/1", environment="test", release="imagegen@1.2.3")
        # Built at run time so the values are only in the frame's variables, not in its source lines.
        password, api_token = "-".join(["hunter2", "pw"]), "_".join(["ig", "live", "secret", "token"])  # noqa: F841
        headers = {"Authorization": f"Bearer {api_token}"}  # noqa: F841
        try:
            raise RuntimeError("boom in a view")
        except RuntimeError as exc:
            sentry_sdk.capture_exception(exc)
        sentry_sdk.flush(timeout=5)
        body = server.requests[-1].body
    text = (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode()
    assert "boom in a view" in text and "imagegen@1.2.3" in text and '"environment":"test"' in text
    assert "hunter2-pw" not in text and "ig_live_secret_token" not in text
    assert '"vars"' not in text  # stack locals are not sent at all


def test_scrub_filters_keys_and_bearer_values() -> None:
    event = {
        "extra": {"db_password": "x", "note": "Authorization: Bearer abcdefghijkl"},
        "headers": [["X-Api-Token", "v"]],
    }
    assert scrub(event) == {
        "extra": {"db_password": "[Filtered]", "note": "Authorization: Bearer [Filtered]"},
        "headers": [["X-Api-Token", "[Filtered]"]],
    }
