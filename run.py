#!/usr/bin/env python3
"""One-command start and test for ImageGen.

    python run.py                 set up .venv, migrate, and serve portal, API and workers
    python run.py --port 8000     the same on another port (also: --host, PORT, --workers)
    python run.py test [ARGS]     ruff, mypy and the whole pytest suite (ARGS go to pytest)
    python run.py manage ARGS     any manage.py command inside the project's environment

Needs only Python 3.11+; everything else is installed into .venv from requirements*.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
MARKER = VENV / "imagegen-installed.json"
IS_WINDOWS = os.name == "nt"
STOP_GRACE_SECONDS = 15


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if IS_WINDOWS else "bin/python")


def say(message: str) -> None:
    print(f"[run.py] {message}", flush=True)


def requirements_digest(files: list[str]) -> str:
    digest = hashlib.sha256(sys.version.encode())
    for name in files:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv(*, dev: bool) -> Path:
    """Create .venv and install requirements, skipping the install when nothing changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py may be started by any Python
        sys.exit("ImageGen needs Python 3.11 or newer; this is " + sys.version.split()[0])
    python = venv_python()
    if not python.exists():
        say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    requirements = "requirements-dev.txt" if dev else "requirements.txt"
    files = ["requirements.txt", "requirements-dev.txt"] if dev else ["requirements.txt"]
    installed = json.loads(MARKER.read_text()) if MARKER.exists() else {}
    wanted = requirements_digest(files)
    if installed.get("dev" if dev else "runtime") != wanted:
        say(f"installing {requirements} (first run or requirements changed)")
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "-r", str(ROOT / requirements)], check=True)
        installed["dev" if dev else "runtime"] = wanted
        if dev:  # the dev set includes the runtime set
            installed["runtime"] = requirements_digest(["requirements.txt"])
        MARKER.write_text(json.dumps(installed))
    return python


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "imagegen.settings")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def manage(python: Path, *args: str) -> None:
    subprocess.run([str(python), str(ROOT / "manage.py"), *args], check=True, cwd=ROOT, env=child_env())


def serve(options: argparse.Namespace) -> int:
    python = ensure_venv(dev=False)
    manage(python, "bootstrap")
    host, port = options.host, options.port
    web = [
        str(python), "-m", "waitress", f"--listen={host}:{port}", f"--threads={options.threads}",
        "--ident=ImageGen", "imagegen.wsgi:application",
    ]  # fmt: skip
    workers = [str(python), str(ROOT / "manage.py"), "qcluster"]
    env = child_env()
    if options.workers:
        env["Q_WORKERS"] = str(options.workers)
    children = [start(web, env), start(workers, env)]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only for display
    say(f"ImageGen is up: http://{shown_host}:{port}/  (API docs /api/docs/, health /health). Ctrl-C stops.")
    return supervise(children)


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Each child leads its own process group, so stopping it also stops whatever it started.
    if IS_WINDOWS:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        )
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def supervise(children: list[subprocess.Popen[bytes]]) -> int:
    stopping = {"signal": 0}

    def request_stop(signum: int, _frame: object) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    while not stopping["signal"]:
        dead = [child for child in children if child.poll() is not None]
        if dead:
            exit_code = dead[0].returncode or 1
            say(f"a process exited unexpectedly (code {dead[0].returncode}); stopping the rest")
            break
        time.sleep(0.3)
    stop_all(children)
    return 0 if stopping["signal"] else exit_code


def stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    say("stopping web server and workers")
    for child in children:
        # Only the leader is asked: a django-q cluster stops its own workers in order, and
        # signalling them all at once leaves it waiting for processes that are already gone.
        child.send_signal(signal.SIGTERM if not IS_WINDOWS else getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"process {child.pid} did not stop in time; killing it")
        signal_group(child, getattr(signal, "SIGKILL", signal.SIGTERM))
        child.wait()
    say("stopped")


def signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    try:
        if IS_WINDOWS:
            child.send_signal(signum)
        else:
            os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def run_tests(pytest_args: list[str]) -> int:
    python = ensure_venv(dev=True)
    manage(python, "compile_catalogs")
    steps = [
        ("ruff check", [str(python), "-m", "ruff", "check", "."]),
        ("ruff format", [str(python), "-m", "ruff", "format", "--check", "."]),
        ("mypy", [str(python), "-m", "mypy"]),
        ("pytest", [str(python), "-m", "pytest", *(pytest_args or ["-n", "auto"])]),
    ]
    failed = []
    for name, command in steps:
        say(f"running {name}")
        if subprocess.run(command, cwd=ROOT, env=child_env()).returncode != 0:
            failed.append(name)
    if failed:
        say("FAILED: " + ", ".join(failed))
        return 1
    say("all checks passed")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["test"]:
        return run_tests(argv[1:])
    if argv[:1] == ["manage"]:
        manage(ensure_venv(dev=False), *argv[1:])
        return 0
    parser = argparse.ArgumentParser(description="Set up and serve ImageGen (portal, API and workers).")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "8")))
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default Q_WORKERS or 4)")
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
