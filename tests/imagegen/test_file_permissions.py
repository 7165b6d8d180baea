"""Files the platform writes are readable by its own user only (0600 files, 0700 directories)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from django.conf import settings

WRITE_EVERYTHING = """
import logging
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
default_storage.save("images/x.png", ContentFile(b"png"))
logging.getLogger("imagegen.test").warning("a line in the log file")
connection.ensure_connection()
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_logs_media_and_secret_key_are_private(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # an install from before the rule: opened up, then closed at start
    env = {**os.environ, "DATA_DIR": str(data)}
    for name in ("DATABASE_URL", "MEDIA_ROOT", "LOG_DIR"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", WRITE_EVERYTHING],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _mode(data) == 0o700
    files = [data / "secret-key", data / "logs" / "imagegen.log", data / "media" / "images" / "x.png"]
    files += list(data.glob("*.sqlite3"))
    for path in files:
        assert _mode(path) == 0o600, f"{path} is {oct(_mode(path))}"
    for path in [data / "logs", data / "media", data / "media" / "images"]:
        assert _mode(path) == 0o700, f"{path} is {oct(_mode(path))}"
