"""Helpers for the accounts tests: portal logins, authenticator devices and their current codes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp

from accounts.models import Authenticator
from tests.conftest import PASSWORD


def current_code(device: Authenticator) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def portal_login(client: Client, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(reverse("accounts:login"), {"username": username, "password": password}, **extra)


@pytest.fixture
def authenticator(owner: User) -> Authenticator:
    """A confirmed authenticator for `owner`: two-factor is on."""
    return Authenticator.objects.create(user=owner, name="authenticator", confirmed=True)


@pytest.fixture
def owner_client(client: Client, owner: User) -> Client:
    client.force_login(owner)
    return client
