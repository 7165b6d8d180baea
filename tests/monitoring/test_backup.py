"""Backup and restore: a consistent snapshot with media, rotation, and a restore that finds it all."""

from __future__ import annotations

import sqlite3
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from monitoring.backup import backup_create, backup_list
from monitoring.restore import backup_restore

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="restores the SQLite file directly")


@pytest.mark.django_db(transaction=True)
@sqlite_only
def test_restore_brings_back_batches_and_images(make_batch: Any, tmp_path: Path, settings: Any) -> None:
    batch = make_batch()
    image = batch.generations.first().image
    archive = backup_create(destination=tmp_path / "backups", keep=3)
    target_db, target_media = tmp_path / "new" / "imagegen.sqlite3", tmp_path / "new" / "media"
    manifest = backup_restore(archive=archive, database_path=target_db, media_root=target_media)
    assert manifest["batches"] == 1 and manifest["generations"] == 2
    with sqlite3.connect(target_db) as restored:
        names = restored.execute("SELECT name FROM generation_batch").fetchall()
        images = [row[0] for row in restored.execute("SELECT image FROM generation_generation")]
    assert names == [(batch.name,)]
    assert (target_media / image.name).read_bytes() == Path(image.path).read_bytes()
    assert all((target_media / name).is_file() for name in images)


@pytest.mark.django_db(transaction=True)
@sqlite_only
def test_restore_refuses_a_target_that_is_not_empty(make_batch: Any, tmp_path: Path) -> None:
    make_batch()
    archive = backup_create(destination=tmp_path, keep=3)
    with pytest.raises(CommandError, match=r"Refusing to restore.*--force"):
        call_command("restore", str(archive))


@pytest.mark.django_db
def test_rotation_keeps_the_newest(tmp_path: Path) -> None:
    for _ in range(4):
        backup_create(destination=tmp_path, keep=2)
    archives = backup_list(destination=tmp_path)
    assert len(archives) == 2
    with tarfile.open(archives[0]) as tar:
        assert {"manifest.json"} <= set(tar.getnames())


@pytest.mark.django_db
def test_the_command_writes_an_archive(tmp_path: Path, capsys: Any) -> None:
    call_command("backup", "--dir", str(tmp_path), "--keep", "1")
    assert "Backup written" in capsys.readouterr().out
    assert len(backup_list(destination=tmp_path)) == 1


def test_restore_of_something_that_is_not_an_archive_says_so(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_text("not a tar")
    with pytest.raises(CommandError, match="not a readable backup archive"):
        call_command("restore", str(bogus))
    with pytest.raises(CommandError, match="No such archive"):
        call_command("restore", str(tmp_path / "missing.tar.gz"))


@pytest.mark.django_db
def test_postgres_backup_without_pg_dump_fails_clearly(monkeypatch: Any, tmp_path: Path) -> None:
    from monitoring import backup

    monkeypatch.setattr(backup, "engine", lambda: "postgresql")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CommandError, match="pg_dump was not found"):
        call_command("backup", "--dir", str(tmp_path))


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="restores a PostgreSQL dump with pg_restore")
def test_postgres_restore_into_an_empty_database_finds_batches_and_images(
    make_batch: Any, tmp_path: Path, settings: Any
) -> None:
    import os
    import subprocess
    import sys
    import uuid

    import psycopg

    from tests.integration.cluster import database_url

    batch = make_batch()
    image = batch.generations.first().image
    archive = backup_create(destination=tmp_path / "backups", keep=3)
    target = f"imagegen_restore_{uuid.uuid4().hex[:12]}"
    source_url = database_url()
    target_url = source_url.rsplit("/", 1)[0] + f"/{target}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{target}"')
    try:
        env = {**os.environ, "DATABASE_URL": target_url, "DATA_DIR": str(tmp_path / "new"),
               "MEDIA_ROOT": str(tmp_path / "new" / "media")}  # fmt: skip
        subprocess.run(
            [sys.executable, "manage.py", "restore", str(archive)], cwd=settings.BASE_DIR, env=env, check=True
        )
        with psycopg.connect(target_url) as restored:
            names = restored.execute("SELECT name FROM generation_batch").fetchall()
            images = [row[0] for row in restored.execute("SELECT image FROM generation_generation")]
        assert names == [(batch.name,)]
        media = tmp_path / "new" / "media"
        assert (media / image.name).read_bytes() == Path(image.path).read_bytes()
        assert all((media / name).is_file() for name in images)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
