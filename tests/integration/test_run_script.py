"""`python run.py` serves portal, API and workers, and SIGTERM stops everything it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.conf import settings

pytestmark = [pytest.mark.integration]
ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError:
        return 0, {}


def test_run_py_serves_until_sigterm_and_leaves_no_process_behind(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and "PYTEST" not in k}
    env.update(DATA_DIR=str(tmp_path / "data"), Q_SYNC="false", ADMIN_PASSWORD="a-long-test-password", Q_WORKERS="2")
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 120
        status, body = 0, {}
        while time.monotonic() < deadline and status != 200:
            time.sleep(0.5)
            status, body = get_health(port)
        assert status == 200, (tmp_path / "run.log").read_text()[-3000:]
        assert body["checks"]["workers"]["status"] == "ok"
        assert (tmp_path / "data" / "imagegen.sqlite3").exists()
        descendants = psutil.Process(process.pid).children(recursive=True)
        assert len(descendants) >= 3  # web server, cluster sentinel and its workers
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
    time.sleep(0.5)
    assert [p.pid for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert get_health(port)[0] == 0  # nothing listens any more
