"""API token services: issue, authenticate, expire and revoke."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_authenticate, token_create, token_revoke


def test_a_token_authenticates_as_its_owner(owner):
    issued = token_create(user=owner, name="ci")
    token = token_authenticate(raw=issued.secret)
    assert token is not None and token.user == owner
    assert token.last_used_at is not None


def test_a_wrong_secret_with_a_real_prefix_is_refused(owner):
    issued = token_create(user=owner, name="ci")
    assert token_authenticate(raw=issued.secret[:-2] + "xx") is None


def test_malformed_tokens_are_refused(db):
    for raw in ["", "ig_", "ig_abc", "Bearer x", "ig__secret"]:
        assert token_authenticate(raw=raw) is None


def test_revoked_and_expired_tokens_are_refused(owner):
    revoked = token_create(user=owner, name="old")
    token_revoke(token=revoked.token)
    expired = token_create(user=owner, name="short", expires_at=timezone.now() + timedelta(seconds=60))
    ApiToken.objects.filter(pk=expired.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert token_authenticate(raw=revoked.secret) is None
    assert token_authenticate(raw=expired.secret) is None


def test_create_token_command_prints_a_working_token(owner):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_token", "owner", stdout=out)
    assert token_authenticate(raw=out.getvalue().strip()).user == owner
