"""Shared fixtures: three users (owner, other, staff), API clients for each, and fast settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from accounts.services import token_create
from generation import services
from generation.models import Batch, BatchSource

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def request_metrics_start_empty(request: Any, monkeypatch: Any) -> None:
    """Each test starts with no buffered request metrics; tests without a database never flush them."""
    from monitoring.request_metrics import recorder

    recorder.take(include_current=True)
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames)
    if not uses_db:
        monkeypatch.setattr(recorder, "_flush_soon", lambda: None)


@pytest.fixture(autouse=True)
def fast_settings(settings: Any, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.GENERATION_RETRY_BASE_SECONDS = 0.05  # retries run inline in tests: keep them quick
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()  # local-memory caches outlive a settings override; every test starts empty
    translation.activate(settings.LANGUAGE_CODE)  # a test that switched language must not leak it
    # Figures shared between readers for a few seconds: tests read right after they write.
    settings.METRICS_CACHE_SECONDS = settings.DASHBOARD_CACHE_SECONDS = settings.DASHBOARD_LIVE_SECONDS = 0
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def _user(username: str, **extra: Any) -> User:
    return User.objects.create_user(username=username, password=PASSWORD, **extra)


@pytest.fixture
def owner(db: None) -> User:
    return _user("owner")


@pytest.fixture
def other_user(db: None) -> User:
    return _user("other")


@pytest.fixture
def staff(db: None) -> User:
    return _user("staff", is_staff=True, is_superuser=True)


def api_client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='test').secret}")
    return client


@pytest.fixture
def api(owner: User) -> APIClient:
    """An API client authenticated as `owner` with a bearer token."""
    return api_client_for(owner)


@pytest.fixture
def other_api(other_user: User) -> APIClient:
    return api_client_for(other_user)


@pytest.fixture
def anon_api(db: None) -> APIClient:
    return APIClient()


@pytest.fixture
def run_queue(django_capture_on_commit_callbacks: Any) -> Any:
    """`with run_queue(): ...` runs what the block enqueues on commit (the queue is synchronous in tests)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def make_batch(owner: User, django_capture_on_commit_callbacks: Any) -> Any:
    """Create a batch through the service; by default the queue renders it at once."""

    def make(user: User | None = None, *, run: bool = True, **request: Any) -> Batch:
        request.setdefault("prompts", ["a red fox", "一隻藍色的貓 🐱"])
        spec = services.check_batch_request(**request)
        with django_capture_on_commit_callbacks(execute=run):
            batch = services.batch_create(owner=user or owner, spec=spec, source=BatchSource.API)
        batch.refresh_from_db()
        return batch

    return make


@pytest.fixture
def real_queue(monkeypatch: Any) -> Iterator[None]:
    """Enqueue into the real broker (not inline), one test at a time, starting from an empty queue."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    from tests.integration.cluster import exclusive_queue

    monkeypatch.setattr(Conf, "SYNC", False)
    with exclusive_queue():
        get_broker().purge_queue()
        yield
        get_broker().purge_queue()


@pytest.fixture(autouse=True)
def isolated_rate_limits(settings: Any) -> None:
    """Each test counts rate limits under its own key prefix, so a shared Redis never leaks counts."""
    settings.RATE_LIMIT_KEY_PREFIX = f"test-rl-{uuid.uuid4().hex}"


@pytest.fixture
def object_store(settings: Any) -> Iterator[Any]:
    """default_storage on a bucket of a real S3 endpoint (moto's server), for this test."""
    from tests.objectstore import s3_server

    with s3_server() as store:
        for name, value in store.settings().items():
            setattr(settings, name, value)
        settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage"}}
        yield store
