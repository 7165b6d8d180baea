"""`manage.py backup`: snapshot the database and media into BACKUP_DIR, keeping BACKUP_KEEP archives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.backup import BackupError, backup_create, backup_list


class Command(BaseCommand):
    help = "Write a consistent backup (database + media) to var/backups/ and rotate old ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", type=Path, default=None, help="where to write (default BACKUP_DIR)")
        parser.add_argument("--keep", type=int, default=None, help="archives to keep (default BACKUP_KEEP)")
        parser.add_argument("--list", action="store_true", help="list existing archives and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        destination = options["dir"] or settings.BACKUP_DIR
        if options["list"]:
            for archive in backup_list(destination=destination):
                self.stdout.write(f"{archive}  {archive.stat().st_size / 2**20:.1f} MiB")
            return
        keep = options["keep"] if options["keep"] is not None else settings.BACKUP_KEEP
        if keep < 1:
            raise CommandError("--keep must be at least 1.")
        try:
            archive = backup_create(destination=destination, keep=keep)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Backup written: {archive}"))
