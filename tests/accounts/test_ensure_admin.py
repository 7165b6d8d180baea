"""accounts/management/commands/ensure_admin.py: the first staff account, created once."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from accounts.management.commands.ensure_admin import admin_ensure

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path
    settings.ADMIN_USERNAME = "admin"
    settings.ADMIN_PASSWORD = ""
    return tmp_path


def test_a_generated_password_is_saved_for_its_owner_only_and_works(data_dir):
    account = admin_ensure()
    assert account.created and account.username == "admin"
    saved = data_dir / "initial-admin-password"
    assert account.password_file == saved
    assert saved.read_text().strip() == account.generated_password
    assert saved.stat().st_mode & 0o777 == 0o600
    assert User.objects.get(username="admin").check_password(account.generated_password)


def test_admin_password_from_the_environment_is_used_and_not_saved(data_dir, settings):
    settings.ADMIN_PASSWORD = "a-chosen-long-password"
    account = admin_ensure()
    assert account.created and account.generated_password == "" and account.password_file is None
    assert not (data_dir / "initial-admin-password").exists()
    assert User.objects.get(username="admin").check_password("a-chosen-long-password")


def test_a_second_start_creates_nothing_and_points_to_the_saved_password(data_dir):
    first = admin_ensure()
    again = admin_ensure()
    assert not again.created and again.generated_password == ""
    assert again.password_file == first.password_file
    assert User.objects.filter(username="admin").count() == 1


def test_the_command_shows_a_generated_password_once(data_dir):
    output = StringIO()
    call_command("ensure_admin", stdout=output)
    assert (data_dir / "initial-admin-password").read_text().strip() in output.getvalue()
    output = StringIO()
    call_command("ensure_admin", stdout=output)
    assert output.getvalue() == ""
