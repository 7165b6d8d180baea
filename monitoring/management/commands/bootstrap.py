"""`manage.py bootstrap`: everything a start needs, in one process (run.py calls it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from accounts.management.commands.ensure_admin import admin_ensure


class Command(BaseCommand):
    help = "Migrate, collect static files, compile translations and create the admin account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--report", type=Path, help="write what run.py shows at the end (admin account, log file) as JSON here"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=options["verbosity"])
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("compile_catalogs")
        if not options["report"]:
            call_command("ensure_admin")
            return
        account = admin_ensure()
        report = {
            "admin_username": account.username,
            "admin_password": account.generated_password,
            "password_from_env": bool(settings.ADMIN_PASSWORD) and not account.generated_password,
            "password_file": str(account.password_file) if account.password_file else "",
            "log_file": str(Path(settings.LOG_DIR) / "imagegen.log"),
            # A Host header Django accepts, for run.py's health probe.
            "probe_host": next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h.strip(".") and "*" not in h), ""),
        }
        options["report"].write_text(json.dumps(report))
        options["report"].chmod(0o600)
