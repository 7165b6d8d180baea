"""`manage.py check_deploy`: a node compares its configuration fingerprints with the other nodes'."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from monitoring.deploy import fingerprint
from monitoring.models import DeployNode

pytestmark = pytest.mark.django_db


def check(*args: str) -> str:
    out = StringIO()
    call_command("check_deploy", *args, stdout=out)
    return out.getvalue()


def test_a_lone_node_checks_its_dependencies_and_says_no_peer_was_seen() -> None:
    output = check("--node", "a")
    assert "storage" in output and "migrations" in output and "all applied" in output
    assert "no other node ran check_deploy" in output
    node = DeployNode.objects.get(name="a")
    assert node.fingerprints["secret_key"] == fingerprint(node_secret())
    assert node_secret() not in str(node.fingerprints)  # only hashes are stored


def node_secret() -> str:
    from django.conf import settings

    return str(settings.SECRET_KEY)


def test_a_node_with_another_secret_key_fails_and_says_what_breaks(settings: Any) -> None:
    check("--node", "a")
    settings.SECRET_KEY = "another-key-entirely-" * 3
    with pytest.raises(CommandError, match="same secret_key"):
        check("--node", "b")


def test_two_nodes_on_local_disk_and_sqlite_are_told_to_share_storage(settings: Any) -> None:
    check("--node", "a")
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("check_deploy", "--node", "b", stdout=out)
    assert "shared storage" in str(error.value)
    assert "images are on this node's disk" in out.getvalue()
    assert "same broker" in out.getvalue() and "as every other node" in out.getvalue()


def test_nodes_not_seen_recently_are_left_out_and_can_be_forgotten() -> None:
    DeployNode.objects.create(
        name="old", version="0.0.1", fingerprints={}, checked_at=timezone.now() - timedelta(days=3)
    )
    assert "no other node" in check("--node", "a", "--within-hours", "24")
    assert "Forgot old." in check("--forget", "old")
    with pytest.raises(CommandError, match="No node named 'old'"):
        check("--forget", "old")
