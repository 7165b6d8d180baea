"""Restoring a backup archive into an empty data directory (or over one, when forced)."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from monitoring.backup import FORMAT_VERSION, PG_FILE, SQLITE_FILE, BackupError, _pg_env, _pg_tool, engine

logger = logging.getLogger(__name__)


def backup_restore(
    *, archive: Path, force: bool = False, database_path: Path | None = None, media_root: Path | None = None
) -> dict[str, Any]:
    """Bring back the database and media from `archive`; refuses non-empty targets unless `force`."""
    media = Path(media_root or settings.MEDIA_ROOT)
    with tempfile.TemporaryDirectory(prefix="imagegen-restore-") as work:
        staging = Path(work)
        manifest = _unpack(archive, staging)
        vendor = engine() if database_path is None else "sqlite"
        if manifest["engine"] != vendor:
            raise BackupError(f"The archive holds a {manifest['engine']} database but {vendor} is configured.")
        target = Path(database_path or connections["default"].settings_dict["NAME"])
        if not force:
            _refuse_non_empty(vendor=vendor, database_path=target, media=media)
        if vendor == "sqlite":
            _restore_sqlite(staging / SQLITE_FILE, target)
        else:
            _restore_postgres(staging / PG_FILE)
        if manifest.get("media_in_archive", True):  # else the images live on in the object store
            _restore_media(staging / "media", media)
        _restore_secret(staging / "secret-key")
    logger.info("Restored %s", archive, extra={"archive": str(archive), "manifest": manifest})
    return manifest


def _unpack(archive: Path, staging: Path) -> dict[str, Any]:
    if not archive.is_file():
        raise BackupError(f"No such archive: {archive}")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")  # refuses absolute paths, links out, devices
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{archive} is not a readable backup archive ({exc}).") from exc
    try:
        manifest: dict[str, Any] = json.loads((staging / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{archive} has no valid manifest.json; is it an ImageGen backup?") from exc
    if manifest.get("format") != FORMAT_VERSION or not (staging / str(manifest.get("database_file"))).is_file():
        raise BackupError(f"{archive} is not an ImageGen backup of format {FORMAT_VERSION}.")
    return manifest


def _refuse_non_empty(*, vendor: str, database_path: Path, media: Path) -> None:
    problems = []
    if vendor == "sqlite" and _sqlite_has_tables(database_path):
        problems.append(f"the database {database_path} already has tables")
    if vendor == "postgresql" and "django_migrations" in connections["default"].introspection.table_names():
        problems.append("the PostgreSQL database already has tables")
    if not settings.AWS_STORAGE_BUCKET_NAME and media.is_dir() and any(media.iterdir()):
        problems.append(f"the media directory {media} is not empty")
    if problems:
        raise BackupError("Refusing to restore: " + "; ".join(problems) + ". Use --force to overwrite.")


def _sqlite_has_tables(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return bool(connection.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0])


def _restore_sqlite(snapshot: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source, destination = sqlite3.connect(snapshot), sqlite3.connect(target)
    try:
        with destination:
            source.backup(destination)  # page by page through SQLite, so a WAL database stays consistent
    finally:
        source.close()
        destination.close()


def _restore_postgres(dump: Path) -> None:
    command = [_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction"]
    env = _pg_env()
    result = subprocess.run(
        [*command, f"--dbname={env['PGDATABASE']}", str(dump)], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()[-500:]}")


def _restore_media(source: Path, media: Path) -> None:
    if media.is_dir():
        shutil.rmtree(media)
    if source.is_dir():
        shutil.copytree(source, media)
    else:
        media.mkdir(parents=True, exist_ok=True)


def _restore_secret(source: Path) -> None:
    # The restored data belongs with the key it was written under (a fresh data directory
    # has just generated a different one); a SECRET_KEY from the environment ignores the file.
    target = Path(settings.DATA_DIR) / "secret-key"
    if source.is_file():
        shutil.copyfile(source, target)
        target.chmod(0o600)
