"""`manage.py restore ARCHIVE`: bring a backup back into an empty data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.backup import BackupError
from monitoring.restore import backup_restore


class Command(BaseCommand):
    help = "Restore the database and media files from a backup archive made by `manage.py backup`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path)
        parser.add_argument("--force", action="store_true", help="overwrite a database or media that is not empty")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup_restore(archive=options["archive"], force=options["force"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {manifest['batches']} batches, {manifest['generations']} generations and "
                f"{manifest['media_files']} media files from a backup made {manifest['created_at']}."
            )
        )
        self.stdout.write("Run `manage.py migrate` if this code is newer than the backup.")
