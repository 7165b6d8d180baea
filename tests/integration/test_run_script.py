"""`python run.py` serves portal, API and workers, keeps them up, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from django.conf import settings

pytestmark = [pytest.mark.integration]
ROOT = Path(settings.BASE_DIR)
START_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_health(port: int, path: str = "/health") -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError:
        return 0, {}


def status_of(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def run_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and "PYTEST" not in k}
    env.update(DATA_DIR=str(data_dir), Q_SYNC="false", ADMIN_PASSWORD="a-long-test-password", Q_WORKERS="2")
    env.update(overrides)
    return env


def start_run_py(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / "run.log").open("wb")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--port", str(port)],
        cwd=ROOT,
        env=run_env(tmp_path / "data", **env),
        stdout=log,
        stderr=log,
    )


def output_of(tmp_path: Path) -> str:
    return (tmp_path / "run.log").read_text()


def wait_for(condition: Callable[[], object], timeout: float, describe: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, describe()
        time.sleep(0.2)


def wait_until_announced(tmp_path: Path, process: subprocess.Popen[bytes]) -> None:
    wait_for(
        lambda: "ImageGen is up" in output_of(tmp_path) or process.poll() is not None,
        START_TIMEOUT,
        lambda: output_of(tmp_path)[-3000:],
    )
    assert process.poll() is None, output_of(tmp_path)[-3000:]


def wait_until_serving(tmp_path: Path, process: subprocess.Popen[bytes], port: int) -> None:
    """Announced, and /health is green: the web server answers and the workers report."""
    wait_until_announced(tmp_path, process)
    wait_for(lambda: get_health(port)[0] == 200, START_TIMEOUT, lambda: f"{get_health(port)}")


def child_running(process: subprocess.Popen[bytes], marker: str) -> psutil.Process | None:
    """run.py's direct child whose command line contains `marker` (waitress, qcluster, _watchdog)."""
    for child in psutil.Process(process.pid).children():
        try:
            if marker in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def alive(processes: list[psutil.Process]) -> list[int]:
    survivors = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                survivors.append(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return survivors


def test_run_py_serves_until_sigterm_and_leaves_no_process_behind(tmp_path: Path):
    port = free_port()
    process = start_run_py(tmp_path, port)
    try:
        wait_until_serving(tmp_path, process, port)
        assert get_health(port)[1]["checks"]["workers"]["status"] == "ok"
        assert (tmp_path / "data" / "imagegen.sqlite3").exists()
        descendants = psutil.Process(process.pid).children(recursive=True)
        assert len(descendants) >= 4  # web server, cluster leader, its sentinel and workers, the watchdog
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
    time.sleep(0.5)
    assert alive(descendants) == []
    assert get_health(port)[0] == 0  # nothing listens any more


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """One run.py for the crash tests: each leaves it serving with all children up again."""
    tmp_path = tmp_path_factory.mktemp("served")
    port = free_port()
    process = start_run_py(tmp_path, port)
    try:
        wait_until_serving(tmp_path, process, port)
        yield process, port, tmp_path
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_killed_worker_cluster_is_restarted_while_the_web_keeps_answering(served):
    process, port, tmp_path = served
    leader = child_running(process, "qcluster")
    assert leader is not None
    # "is up" waits for the web server only: let the cluster finish starting its workers too.
    wait_for(lambda: len(leader.children(recursive=True)) >= 3, 60, lambda: "cluster did not start its workers")
    old_cluster = [leader, *leader.children(recursive=True)]  # leader, sentinel, workers, monitor
    web = child_running(process, "waitress")

    leader.kill()
    answers = []

    def cluster_back() -> bool:
        answers.append(get_health(port, "/health/live")[0])
        new = child_running(process, "qcluster")
        return new is not None and new.pid != leader.pid and len(new.children(recursive=True)) >= 2

    wait_for(cluster_back, 60, lambda: output_of(tmp_path)[-3000:])
    assert set(answers) == {200}, answers  # the web server answered throughout
    assert child_running(process, "waitress") == web
    wait_for(lambda: alive(old_cluster) == [], 10, lambda: f"orphans left: {alive(old_cluster)}")
    output = output_of(tmp_path)
    assert "worker cluster was killed by SIGKILL; restarting it in 1 s" in output
    assert "worker cluster restarted (restart 1" in output


def test_killed_web_server_is_restarted(served):
    process, port, tmp_path = served
    web = child_running(process, "waitress")
    cluster = child_running(process, "qcluster")
    assert web is not None and cluster is not None

    web.kill()

    def web_back() -> bool:
        new = child_running(process, "waitress")
        return new is not None and new.pid != web.pid and get_health(port, "/health/live")[0] == 200

    wait_for(web_back, 60, lambda: output_of(tmp_path)[-3000:])
    assert child_running(process, "qcluster") == cluster  # the workers were left alone
    output = output_of(tmp_path)
    assert "web server was killed by SIGKILL; restarting it in 1 s" in output
    assert "web server restarted (restart 1" in output


def test_terminal_shows_no_request_lines_but_the_log_file_has_them(served):
    _process, port, tmp_path = served
    assert get_health(port, "/health/live?from=terminal-test")[0] == 200
    assert status_of(port, "/no-such-page-terminal-test") == 404
    log_file = tmp_path / "data" / "logs" / "imagegen.log"
    wait_for(lambda: "no-such-page-terminal-test" in log_file.read_text(), 10, lambda: "request not logged")
    entries = [json.loads(line) for line in log_file.read_text().splitlines() if "terminal-test" in line]
    assert {entry["logger"] for entry in entries} == {"imagegen.request"}
    assert {entry["client_ip"] for entry in entries} == {"127.0.0.1"}
    output = output_of(tmp_path)
    assert "terminal-test" not in output
    assert "imagegen.request" not in output
    assert "Q Cluster" not in output  # django-q's start-up chatter is INFO: file only


def test_kill_9_of_run_py_leaves_no_process_behind_and_the_box_comes_last(tmp_path: Path):
    port = free_port()
    process = start_run_py(tmp_path, port, ADMIN_PASSWORD="")
    try:
        wait_until_serving(tmp_path, process, port)
        tree = psutil.Process(process.pid)
        # Web server, cluster leader, sentinel, workers, watchdog: the cluster may still be starting
        # its workers when its first heartbeat turns /health green.
        wait_for(lambda: len(tree.children(recursive=True)) >= 5, 30, lambda: f"{tree.children(recursive=True)}")
        descendants = tree.children(recursive=True)
    finally:
        process.kill()
        process.wait(timeout=10)
    wait_for(lambda: alive(descendants) == [], 20, lambda: f"survivors: {alive(descendants)}")
    assert get_health(port, "/health/live")[0] == 0

    password = (tmp_path / "data" / "initial-admin-password").read_text().strip()
    lines = output_of(tmp_path).rstrip().splitlines()
    end = max(i for i, line in enumerate(lines) if line.startswith(("└", "+")))
    # The box closes start-up; only log lines of the kill itself (warnings, errors) may follow.
    assert all("WARNING" in line or "ERROR" in line or '"level"' in line for line in lines[end + 1 :])
    box = lines[: end + 1]
    assert "ImageGen is up" in box[-9]
    assert f"http://127.0.0.1:{port}/" in box[-7]
    assert box[-6].split()[1:3] == ["User", "admin"]
    assert box[-5].split()[1:3] == ["Password", password]


def test_busy_port_is_a_clear_error_before_anything_starts(tmp_path: Path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        process = start_run_py(tmp_path, port)
        process.wait(timeout=30)
    assert process.returncode != 0
    output = output_of(tmp_path)
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert "--port" in output and "PORT=" in output
    assert "preparing" not in output
    assert not (tmp_path / "data").exists()  # nothing was set up or started


def test_kill_9_of_run_py_also_ends_a_wedged_worker_cluster(tmp_path: Path):
    """A cluster leader that cannot act on the parent-death signal: the watchdog kills its group."""
    port = free_port()
    process = start_run_py(tmp_path, port)
    try:
        wait_until_serving(tmp_path, process, port)
        leader = child_running(process, "qcluster")
        assert leader is not None
        descendants = psutil.Process(process.pid).children(recursive=True)
        leader.suspend()  # SIGSTOP: the SIGTERM the kernel sends on run.py's death stays pending
    finally:
        process.kill()
        process.wait(timeout=10)
    wait_for(lambda: alive(descendants) == [], 20, lambda: f"survivors: {alive(descendants)}")
