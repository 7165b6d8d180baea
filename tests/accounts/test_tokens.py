"""Token lifecycle in accounts.services: hashed at rest, found by prefix, revoked and expired for good."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_authenticate, token_create, token_revoke
from imagegen.errors import ValidationFailed


def test_secret_is_stored_only_as_its_hash(owner):
    issued = token_create(user=owner, name="ci")
    row = ApiToken.objects.get(pk=issued.token.pk)
    secret = issued.secret.split("_", 2)[2]
    assert secret not in row.secret_hash
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert issued.secret.startswith(f"ig_{row.prefix}_")


def test_token_authenticates_its_owner_and_records_last_use(owner):
    issued = token_create(user=owner, name="ci")
    token = token_authenticate(raw=issued.secret)
    assert token is not None and token.user == owner
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # wrong secret, right prefix
        lambda s: s.replace("ig_", "xx_", 1),
        lambda s: s.split("_", 2)[0] + "_" + s.split("_", 2)[1],  # no secret at all
        lambda s: "",
    ],
)
def test_a_wrong_or_malformed_token_is_refused(owner, mangle):
    issued = token_create(user=owner, name="ci")
    assert token_authenticate(raw=mangle(issued.secret)) is None


def test_revoked_token_stops_working_and_revoking_twice_is_harmless(owner):
    issued = token_create(user=owner, name="ci")
    token_revoke(token=issued.token)
    first = ApiToken.objects.get(pk=issued.token.pk).revoked_at
    token_revoke(token=issued.token)
    assert token_authenticate(raw=issued.secret) is None
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_at == first


def test_expired_token_stops_working(owner):
    issued = token_create(user=owner, name="short", expires_at=timezone.now() + timedelta(hours=1))
    assert token_authenticate(raw=issued.secret) is not None
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert token_authenticate(raw=issued.secret) is None


def test_token_of_a_deactivated_user_stops_working(owner):
    issued = token_create(user=owner, name="ci")
    owner.is_active = False
    owner.save()
    assert token_authenticate(raw=issued.secret) is None


def test_expiry_in_the_past_is_refused(owner):
    with pytest.raises(ValidationFailed) as error:
        token_create(user=owner, name="old", expires_at=timezone.now() - timedelta(minutes=1))
    assert "expires_at" in error.value.details


def test_overlong_name_is_refused(owner):
    with pytest.raises(ValidationFailed) as error:
        token_create(user=owner, name="x" * 101)
    assert "name" in error.value.details
