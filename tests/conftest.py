"""Shared fixtures: three users (owner, other, staff), API clients for each, and fast settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.services import token_create
from generation import services
from generation.models import Batch, BatchSource

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_settings(settings: Any, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
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
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture
def run_queue(django_capture_on_commit_callbacks: Any) -> Iterator[None]:
    """Run what is enqueued on commit right away (the queue is synchronous in tests)."""
    with django_capture_on_commit_callbacks(execute=True):
        yield


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


@pytest.fixture(autouse=True)
def isolated_rate_limits(settings: Any) -> None:
    """Each test counts rate limits under its own key prefix, so a shared Redis never leaks counts."""
    settings.RATE_LIMIT_KEY_PREFIX = f"test-rl-{uuid.uuid4().hex}"
