"""`manage.py ensure_admin`: create the first staff account once, as run.py does on start."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin account (ADMIN_USERNAME / ADMIN_PASSWORD) if it does not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        username = settings.ADMIN_USERNAME
        if users.filter(username=username).exists():
            return
        password = settings.ADMIN_PASSWORD
        if password:
            users.create_superuser(username=username, email="", password=password)
            self.stdout.write(f"Created admin account {username!r} with the password from ADMIN_PASSWORD.")
            return
        password = secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        path = Path(settings.DATA_DIR) / "initial-admin-password"
        path.write_text(password + "\n")
        path.chmod(0o600)
        self.stdout.write(
            self.style.WARNING(
                f"Created admin account {username!r} with password: {password}\n"
                f"(shown once; also written to {path}, readable only by you)"
            )
        )
