"""run.py's supervisor logic: restart backoff and the port check (processes, no web server)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

import run


@pytest.fixture
def supervisor() -> Iterator[run.Supervisor]:
    supervisor = run.Supervisor([], on_up=lambda status: None)
    yield supervisor
    for child in supervisor.children:
        if child.process is not None and child.process.poll() is None:
            child.process.kill()
            child.process.wait()
    supervisor.watchdog.release()


def crashing_child() -> run.Child:
    return run.Child("test child", [sys.executable, "-c", "raise SystemExit(3)"], {}, 15)


def test_a_crashing_child_is_restarted_with_doubling_delays_up_to_30_s(supervisor, capsys):
    child = crashing_child()
    supervisor.children.append(child)
    supervisor.start(child)
    delays, now = [], 1000.0
    for _ in range(7):
        assert child.process is not None
        child.process.wait()
        supervisor.check(child, now)  # notices the exit and schedules the restart
        assert child.restart_at is not None
        delays.append(child.restart_at - now)
        now = child.restart_at
        supervisor.check(child, now)  # restarts it
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert child.restarts == 7
    output = capsys.readouterr().out
    assert "test child exited with code 3; restarting it in 1 s (the rest keeps running)" in output
    assert "test child restarted (restart 7" in output


def test_a_child_that_stayed_up_starts_again_from_the_first_delay(supervisor):
    child = run.Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], {}, 15)
    supervisor.children.append(child)
    supervisor.start(child)
    child.delay = 16
    supervisor.check(child, child.started_at + 10)
    assert child.delay == 16  # not up long enough yet
    supervisor.check(child, child.started_at + run.STABLE_AFTER_SECONDS)
    assert child.delay == run.RESTART_FIRST_DELAY


def test_port_check_names_a_busy_port_and_the_way_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        problem = run.port_problem("127.0.0.1", port)
    assert problem is not None
    assert f"port {port} on 127.0.0.1 is already in use" in problem
    assert "--port" in problem and "PORT=" in problem
    assert run.port_problem("127.0.0.1", port) is None  # free again once closed


def test_port_check_rejects_an_unknown_host():
    assert "cannot listen on no-such-host.invalid:5000" in (run.port_problem("no-such-host.invalid", 5000) or "")
