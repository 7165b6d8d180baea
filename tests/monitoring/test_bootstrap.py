"""monitoring/management/commands/bootstrap.py: what `python run.py` runs before serving."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_bootstrap_reports_what_run_py_shows_in_its_box(settings, tmp_path):
    settings.DATA_DIR, settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD = tmp_path, "admin", ""
    data_dir = tmp_path
    report_file = tmp_path / "report.json"
    call_command("bootstrap", "--report", str(report_file), verbosity=0, stdout=StringIO())
    report = json.loads(report_file.read_text())
    assert report["admin_username"] == "admin"
    assert report["admin_password"] == (data_dir / "initial-admin-password").read_text().strip()
    assert report["password_file"] == str(data_dir / "initial-admin-password")
    assert report["log_file"] == str(Path(settings.LOG_DIR) / "imagegen.log")
    assert report["probe_host"] == settings.ALLOWED_HOSTS[0]
