"""Backups: a consistent database snapshot plus the media files in one archive, and the way back.

SQLite is copied with its online backup API (consistent while workers write); PostgreSQL
with `pg_dump` in custom format. The archive also holds a manifest saying what is inside.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.db import connections
from django.utils import timezone

logger = logging.getLogger(__name__)

ARCHIVE_PREFIX = "imagegen-"
ARCHIVE_SUFFIX = ".tar.gz"
FORMAT_VERSION = 1
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


def engine() -> str:
    vendor = connections["default"].vendor
    if vendor not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups support SQLite and PostgreSQL; this database is {vendor}.")
    return vendor


def backup_create(*, destination: Path, keep: int) -> Path:
    """Write imagegen-YYYYmmdd-HHMMSS.tar.gz into `destination` and keep only the `keep` newest."""
    destination.mkdir(parents=True, exist_ok=True)
    vendor = engine()
    with tempfile.TemporaryDirectory(dir=destination, prefix=".backup-") as work:
        staging = Path(work)
        database_file = _snapshot_sqlite(staging) if vendor == "sqlite" else _snapshot_postgres(staging)
        manifest = _manifest(vendor=vendor, database_file=database_file)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
        archive = _unique_name(destination)
        partial = staging / "archive.partial"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(staging / "manifest.json", arcname="manifest.json")
            tar.add(staging / database_file, arcname=database_file)
            # Objects in a bucket stay there: the store's own versioning keeps their history
            # (docs/deploy.md); the archive holds the database that names them.
            if not settings.AWS_STORAGE_BUCKET_NAME and Path(settings.MEDIA_ROOT).is_dir():
                tar.add(settings.MEDIA_ROOT, arcname="media")
            secret = Path(settings.DATA_DIR) / "secret-key"
            if secret.is_file():  # the development key: without it, encrypted values cannot be read back
                tar.add(secret, arcname="secret-key")
        partial.chmod(0o600)  # the archive holds every user's data
        partial.replace(archive)
    backup_rotate(destination=destination, keep=keep)
    logger.info("Backup written to %s", archive, extra={"archive": str(archive), "bytes": archive.stat().st_size})
    return archive


def _unique_name(destination: Path) -> Path:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    candidate, counter = destination / f"{ARCHIVE_PREFIX}{stamp}{ARCHIVE_SUFFIX}", 1
    while candidate.exists():
        counter += 1
        candidate = destination / f"{ARCHIVE_PREFIX}{stamp}-{counter}{ARCHIVE_SUFFIX}"
    return candidate


def _snapshot_sqlite(staging: Path) -> str:
    source = sqlite3.connect(connections["default"].settings_dict["NAME"])
    target = sqlite3.connect(staging / SQLITE_FILE)
    try:
        with target:
            source.backup(target)
    finally:
        source.close()
        target.close()
    return SQLITE_FILE


def _pg_env() -> dict[str, str]:
    config = connections["default"].settings_dict
    env = dict(os.environ)
    for variable, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
        if config.get(key):
            env[variable] = str(config[key])
    env["PGDATABASE"] = config["NAME"]
    return env


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} was not found on PATH. Install the PostgreSQL client tools "
            f"(Debian/Ubuntu: apt-get install postgresql-client) in the same major version as the server."
        )
    return path


def _snapshot_postgres(staging: Path) -> str:
    result = subprocess.run(
        [_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={staging / PG_FILE}"],
        env=_pg_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()[-500:]}")
    return PG_FILE


def _manifest(*, vendor: str, database_file: str) -> dict[str, Any]:
    from generation import stats
    from monitoring.health import storage_location

    media = Path(settings.MEDIA_ROOT)
    in_archive = not settings.AWS_STORAGE_BUCKET_NAME and media.is_dir()
    files = [path for path in media.rglob("*") if path.is_file()] if in_archive else []
    return {
        "format": FORMAT_VERSION,
        "created_at": timezone.now().isoformat(),
        "engine": vendor,
        "database_file": database_file,
        "django": django.get_version(),
        **stats.table_sizes(),
        "media_files": len(files),
        "media_bytes": sum(path.stat().st_size for path in files),
        "media_storage": storage_location(),
        "media_in_archive": in_archive,
    }


def backup_list(*, destination: Path) -> list[Path]:
    """Archives in `destination`, newest first."""
    if not destination.is_dir():
        return []
    archives = destination.glob(f"{ARCHIVE_PREFIX}*{ARCHIVE_SUFFIX}")
    return sorted(archives, key=lambda path: path.stat().st_mtime, reverse=True)


def backup_rotate(*, destination: Path, keep: int) -> list[Path]:
    removed = backup_list(destination=destination)[max(keep, 1) :]
    for path in removed:
        path.unlink()
    return removed
