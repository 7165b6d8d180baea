#!/usr/bin/env python3
"""One-command start and test for ImageGen.

    python run.py                 set up .venv, migrate, and serve portal, API and workers
    python run.py --port 8000     the same on another port (also: --host, PORT, --workers)
    python run.py test [ARGS]     ruff, mypy and the whole pytest suite (ARGS go to pytest)
    python run.py manage ARGS     any manage.py command inside the project's environment

Needs only Python 3.11+; everything else is installed into .venv from requirements*.txt.
While serving, run.py supervises its two children (web server and worker cluster): a crashed one
is restarted with backoff while the other keeps going, and none of them outlives run.py.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
MARKER = VENV / "imagegen-installed.json"
IS_WINDOWS = os.name == "nt"
IS_LINUX = sys.platform.startswith("linux")
STOP_GRACE_SECONDS = 15
# A crashed child is started again after 1 s, then 2, 4 ... up to 30 s while it keeps crashing;
# once it has stayed up this long, the next crash starts from 1 s again.
RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
STABLE_AFTER_SECONDS = 60.0
# After run.py itself is killed, its children get this long to stop their own processes.
ORPHAN_GRACE_SECONDS = 5.0
# Said once when the web server is slow to answer its first health probe.
SLOW_START_SECONDS = 60.0
PR_SET_PDEATHSIG = 1


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


# --- Serving ---------------------------------------------------------------------------------------


def serve(options: argparse.Namespace) -> int:
    host, port = options.host, options.port
    problem = port_problem(host, port)
    if problem:  # before anything starts: no half-started service to clean up
        print(f"[run.py] {problem}", file=sys.stderr, flush=True)
        return 1
    python = ensure_venv(dev=False)
    report = bootstrap(python)
    env = child_env()
    if options.workers:
        env["Q_WORKERS"] = str(options.workers)
    children = [
        Child("web server", web_command(python, host, port, options.threads), env, signal.SIGTERM),
        # SIGTERM lets the cluster stop its own workers; the watchdog kills what is left.
        Child("worker cluster", [str(python), str(ROOT / "manage.py"), "qcluster"], env, signal.SIGTERM),
    ]
    say(f"starting the web server on {host}:{port} and the worker cluster")
    supervisor = Supervisor(children, on_up=lambda status: announce(host, port, status, report))
    url = health_url(host, port)
    return supervisor.run(lambda: probe(url, report.get("probe_host") or urllib.parse.urlsplit(url).netloc))


MAX_REQUEST_BYTES = 2_621_440 + 2 * 1024 * 1024 + 64 * 1024  # == imagegen.settings.MAX_REQUEST_BYTES


def web_command(python: Path, host: str, port: int, threads: int) -> list[str]:
    # waitress would drop every X-Forwarded-* header; imagegen.wsgi believes them from
    # TRUSTED_PROXIES only (networks, which waitress's single --trusted-proxy cannot express).
    # Its body limit (1 GiB by default) matches settings.MAX_REQUEST_BYTES, so a chunked upload
    # without Content-Length is cut off while it streams, not after the whole of it arrived.
    return [
        str(python), "-m", "waitress", f"--listen={host}:{port}", f"--threads={threads}",
        "--ident=ImageGen", "--no-clear-untrusted-proxy-headers",
        f"--max-request-body-size={MAX_REQUEST_BYTES}", "imagegen.wsgi:application",
    ]  # fmt: skip


def port_problem(host: str, port: int) -> str | None:
    """Why the web server could not listen on host:port, or None when it can."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"cannot listen on {host}:{port}: {error.strerror} (check --host or HOST)"
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            if not IS_WINDOWS:  # as waitress does, so a port in TIME_WAIT counts as free
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as error:
                return bind_failure(host, port, error)
    return None


def bind_failure(host: str, port: int, error: OSError) -> str:
    other = 8000 if port != 8000 else 8080
    hint = f"Stop it, or pick another port: python run.py --port {other}  (or set PORT={other})."
    if error.errno == errno.EADDRINUSE or getattr(error, "winerror", None) == 10048:
        return f"port {port} on {host} is already in use by another program (or another ImageGen). {hint}"
    if error.errno == errno.EACCES:
        return f"not allowed to listen on port {port} on {host} (ports below 1024 need privileges). {hint}"
    return f"cannot listen on {host}:{port}: {error.strerror}. {hint}"


def bootstrap(python: Path) -> dict[str, Any]:
    """Migrate, collect static files, compile translations, create the admin; quiet unless it fails."""
    say("preparing the database, static files and translations")
    with tempfile.TemporaryDirectory(prefix="imagegen-") as folder:
        report_file = Path(folder) / "bootstrap.json"
        command = [str(python), str(ROOT / "manage.py"), "bootstrap", "--report", str(report_file)]
        done = subprocess.run(command, cwd=ROOT, env=child_env(), capture_output=True, text=True)
        if done.returncode != 0:
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            say("setting up failed (see above); nothing was started")
            sys.exit(done.returncode)
        if done.stderr.strip():  # warnings, e.g. from system checks
            sys.stderr.write(done.stderr)
        return json.loads(report_file.read_text())


def health_url(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/health/live"


def probe(url: str, host: str) -> int | None:
    """The HTTP status the web server answers with, or None while it does not answer.

    `host` is a name Django accepts (from ALLOWED_HOSTS), so that the probe is not refused.
    """
    request = urllib.request.Request(url, headers={"Host": host})  # noqa: S310 - http, our own
    try:
        with NO_REDIRECTS.open(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:  # answered, e.g. 400 when ALLOWED_HOSTS excludes the address
        return int(error.code)
    except (OSError, ValueError):
        return None


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect (e.g. to HTTPS) is an answer too


NO_REDIRECTS = urllib.request.build_opener(_KeepRedirects)


def announce(host: str, port: int, status: int, report: dict[str, Any]) -> None:
    """The last thing printed on start: where to go and how to sign in, in a box."""
    if status != 200:
        say(f"warning: /health/live answered HTTP {status}; see {report.get('log_file', 'the log file')}")
    say(f"request log and details: {report.get('log_file', '')}")
    url = health_url(host, port).removesuffix("health/live")
    lines = [
        "ImageGen is up",
        "",
        f"Open      {url}",
        f"User      {report.get('admin_username', 'admin')}",
        *password_lines(report),
        "",
        "API docs /api/docs/   health /health   Ctrl-C stops",
    ]
    print(boxed(lines), flush=True)


def password_lines(report: dict[str, Any]) -> list[str]:
    generated, saved_in = report.get("admin_password"), report.get("password_file")
    if generated:
        return [f"Password  {generated}   (shown only this once)", f"Saved in  {saved_in}"]
    if report.get("password_from_env"):
        return ["Password  the ADMIN_PASSWORD you set"]
    if saved_in:
        return [f"Password  in {saved_in}", "          (generated on the first start, unless you changed it)"]
    user = report.get("admin_username", "admin")
    return [f"Password  unchanged (forgot it? python run.py manage changepassword {user})"]


def boxed(lines: list[str]) -> str:
    width = max(len(line) for line in lines) + 2
    try:
        "┌─┐│└┘".encode(sys.stdout.encoding or "ascii")
        top, side, bottom = "┌" + "─" * width + "┐", "│", "└" + "─" * width + "┘"
    except (UnicodeEncodeError, LookupError):
        top = bottom = "+" + "-" * width + "+"
        side = "|"
    body = [f"{side} {line.ljust(width - 2)} {side}" for line in lines]
    return "\n".join(["", top, *body, bottom, ""])


# --- Supervision -----------------------------------------------------------------------------------


@dataclass
class Child:
    """One supervised process: its command, the running process, and its restart backoff."""

    name: str
    command: list[str]
    env: dict[str, str]
    death_signal: int  # what the kernel sends it when run.py dies (Linux)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay: float = RESTART_FIRST_DELAY
    restart_at: float | None = None
    restarts: int = field(default=0)

    def start(self) -> None:
        self.process = spawn(self.command, self.env, self.death_signal)
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def spawn(command: list[str], env: dict[str, str], death_signal: int) -> subprocess.Popen[bytes]:
    # Each child leads its own process group, so stopping it also stops whatever it started.
    if IS_WINDOWS:
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        return subprocess.Popen(command, cwd=ROOT, env=env, creationflags=flags)
    preexec = die_with_parent(death_signal) if IS_LINUX else None
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, preexec_fn=preexec)


def die_with_parent(signum: int) -> Callable[[], None]:
    """A preexec_fn asking the kernel to send `signum` to the child when run.py dies (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signum), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
        if os.getppid() != parent:  # run.py died before prctl took effect
            os.kill(os.getpid(), signum)

    return preexec


class Supervisor:
    """Keeps the children running until asked to stop; then stops them through their leaders."""

    def __init__(self, children: list[Child], on_up: Callable[[int], None]):
        self.children = children
        self.on_up = on_up
        self.watchdog = Watchdog()
        self.stop_signal = 0

    def run(self, is_up: Callable[[], int | None]) -> int:
        """Supervise until a stop signal; `is_up` gives the web server's answer (None: not yet)."""
        for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if signum is not None:
                signal.signal(signum, self.request_stop)
        for child in self.children:
            self.start(child)
        announced, next_probe = False, time.monotonic()
        impatient_at = next_probe + SLOW_START_SECONDS
        while not self.stop_signal:
            now = time.monotonic()
            for child in self.children:
                self.check(child, now)
            if not announced and now >= next_probe:
                status = is_up()
                announced, next_probe = status is not None, time.monotonic() + 0.3
                if announced and not self.stop_signal:
                    self.on_up(status or 0)
                elif now >= impatient_at:
                    say(f"the web server has not answered /health/live for {SLOW_START_SECONDS:g} s; still waiting")
                    impatient_at = float("inf")
            time.sleep(0.2)
        self.stop_all()
        return 0

    def request_stop(self, signum: int, _frame: object) -> None:
        self.stop_signal = signum

    def start(self, child: Child) -> int:
        child.start()
        assert child.process is not None
        self.watchdog.watch(child.process.pid)
        return child.process.pid

    def check(self, child: Child, now: float) -> None:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restarts += 1
                pid = self.start(child)
                say(f"{child.name} restarted (restart {child.restarts}, pid {pid})")
            return
        if child.running:
            if now >= child.started_at + STABLE_AFTER_SECONDS:  # not now - started: that may round below
                child.delay = RESTART_FIRST_DELAY
            return
        self.after_crash(child, now)

    def after_crash(self, child: Child, now: float) -> None:
        assert child.process is not None
        code = child.process.returncode
        # The leader is gone; whatever it started (a cluster's workers) must not linger or run twice.
        signal_group(child.process, getattr(signal, "SIGKILL", signal.SIGTERM))
        self.watchdog.forget(child.process.pid)
        how = f"was killed by {signal_name(-code)}" if code < 0 else f"exited with code {code}"
        say(f"{child.name} {how}; restarting it in {child.delay:g} s (the rest keeps running)")
        child.restart_at = now + child.delay
        child.delay = min(child.delay * 2, RESTART_MAX_DELAY)

    def stop_all(self) -> None:
        say("stopping web server and workers")
        # A child waiting for its restart was cleaned up when it died; its group id may be reused.
        processes = [c.process for c in self.children if c.process is not None and c.restart_at is None]
        for process in processes:
            # Only the leader is asked: a django-q cluster stops its own workers in order, and
            # signalling them all at once leaves it waiting for processes that are already gone.
            if process.poll() is None:
                process.send_signal(signal.SIGTERM if not IS_WINDOWS else getattr(signal, "CTRL_BREAK_EVENT", 15))
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"process {process.pid} did not stop in time; killing it")
            signal_group(process, getattr(signal, "SIGKILL", signal.SIGTERM))
            process.wait()
        self.watchdog.release()
        say("stopped")


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    try:
        if IS_WINDOWS:
            child.send_signal(signum)
        else:
            os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


class Watchdog:
    """A small process that outlives run.py by a few seconds to stop what run.py started.

    The kernel's parent-death signal reaches only run.py's children, not a cluster's workers
    (grandchildren). The watchdog holds the read end of a pipe from run.py; when run.py dies,
    even by SIGKILL, the pipe closes and the watchdog ends the children's process groups.
    """

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self.process = self.spawn()

    @staticmethod
    def spawn() -> subprocess.Popen[bytes] | None:
        if IS_WINDOWS:
            return None
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "_watchdog"],
            stdin=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C or group signal meant for run.py must not end it early
        )

    def watch(self, group: int) -> None:
        self.groups.add(group)
        self.send(f"watch {group}")

    def forget(self, group: int) -> None:
        self.groups.discard(group)
        self.send(f"forget {group}")

    def release(self) -> None:
        """run.py stopped everything itself: the watchdog may leave without killing anything."""
        self.send("release")
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
            self.process.wait(timeout=10)

    def send(self, line: str) -> None:
        if self.process is None or self.process.stdin is None:
            return
        try:
            self.process.stdin.write(f"{line}\n".encode())
            self.process.stdin.flush()
        except OSError:  # someone killed it: start another and tell it everything again
            say("the watchdog process is gone; starting a new one")
            self.process = self.spawn()
            for group in sorted(self.groups):
                self.send(f"watch {group}")


def watchdog_main(commands: IO[str]) -> int:
    """Body of the watchdog process: follow run.py's messages until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    for line in commands:
        verb, _, argument = line.strip().partition(" ")
        if verb == "release":
            return 0
        if verb == "watch":
            groups.add(int(argument))
        elif verb == "forget":
            groups.discard(int(argument))
    end_groups(groups)  # run.py died without stopping its children
    return 0


def end_groups(groups: set[int]) -> None:
    if not IS_LINUX:  # on Linux the parent-death signal already asked the leaders to stop
        for group in groups:
            send_group(group, signal.SIGTERM, leader_only=True)
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    while time.monotonic() < deadline and any(send_group(group, 0) for group in groups):
        time.sleep(0.2)
    for group in groups:
        send_group(group, signal.SIGKILL)


def send_group(group: int, signum: int, *, leader_only: bool = False) -> bool:
    """Signal a process group (or its leader); False when nobody was there."""
    try:
        (os.kill if leader_only else os.killpg)(group, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# --- Tests -----------------------------------------------------------------------------------------


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
    if argv[:1] == ["_watchdog"]:  # internal: started by serve()
        return watchdog_main(sys.stdin)
    parser = argparse.ArgumentParser(description="Set up and serve ImageGen (portal, API and workers).")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "8")))
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default Q_WORKERS or 4)")
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
