"""Starting real `manage.py qcluster` processes against the test database, for integration tests."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def database_url() -> str:
    """The URL of the database this test runs against (the test database, not the dev one)."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(name).resolve()}"
    host = connection.settings_dict.get("HOST") or "127.0.0.1"
    port = connection.settings_dict.get("PORT") or 5432
    user = connection.settings_dict.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{name}"


def cluster_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="imagegen.settings",
        DATABASE_URL=database_url(),
        DATA_DIR=str(data_dir),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        Q_SYNC="false",
        SECRET_KEY=settings.SECRET_KEY,  # tasks are signed with it
        PYTHONUNBUFFERED="1",
        LOG_CONSOLE_LEVEL="INFO",  # tests read django-q's start-up lines (e.g. the monitor's pid)
    )
    env.update(overrides)
    return env


@contextmanager
def running_cluster(env: dict[str, str], log: Path, *, stop_seconds: float = 15) -> Iterator[subprocess.Popen[bytes]]:
    """Run a qcluster in its own process group; it is stopped (killed after `stop_seconds`) on exit.

    A test that checks what a clean stop leaves behind gives it longer: on a loaded machine
    django-q's monitor may take a while to save the last results before the node can leave.
    """
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        process.terminate()  # the cluster's leader stops its own workers in order
        try:
            process.wait(timeout=stop_seconds)
        except subprocess.TimeoutExpired:
            kill_group(process, signal.SIGKILL)
            process.wait()
        kill_group(process, signal.SIGKILL)  # no orphaned worker processes


def kill_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


@contextmanager
def exclusive_queue() -> Iterator[None]:
    """Hold the machine-wide lock for tests that run real clusters.

    Parallel test workers have separate databases but share one Redis queue, so tests that
    enqueue into the real broker and start clusters take turns.
    """
    lock_path = Path(settings.DATA_DIR) / "real-queue.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def wait_for(condition: Callable[[], bool], *, timeout: float, every: Callable[[], object] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if every is not None:
            every()
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s")
