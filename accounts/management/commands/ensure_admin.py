"""`manage.py ensure_admin`: create the first staff account once, as run.py does on start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


@dataclass(frozen=True)
class AdminAccount:
    """What a start did about the admin account; run.py shows it in its closing box."""

    username: str
    created: bool
    generated_password: str  # only when generated just now: it is shown once
    password_file: Path | None  # where a generated password was saved, if it still exists


def admin_ensure() -> AdminAccount:
    """Create the admin account (ADMIN_USERNAME / ADMIN_PASSWORD) unless it exists."""
    users = get_user_model().objects
    username = settings.ADMIN_USERNAME
    path = Path(settings.DATA_DIR) / "initial-admin-password"
    if users.filter(username=username).exists():
        return AdminAccount(username, False, "", path if path.exists() else None)
    password = settings.ADMIN_PASSWORD
    if password:
        users.create_superuser(username=username, email="", password=password)
        return AdminAccount(username, True, "", None)
    password = secrets.token_urlsafe(12)
    users.create_superuser(username=username, email="", password=password)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return AdminAccount(username, True, password, path)


class Command(BaseCommand):
    help = "Create the admin account (ADMIN_USERNAME / ADMIN_PASSWORD) if it does not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        account = admin_ensure()
        if not account.created:
            return
        if not account.generated_password:
            self.stdout.write(f"Created admin account {account.username!r} with the password from ADMIN_PASSWORD.")
            return
        self.stdout.write(
            self.style.WARNING(
                f"Created admin account {account.username!r} with password: {account.generated_password}\n"
                f"(shown once; also written to {account.password_file}, readable only by you)"
            )
        )
