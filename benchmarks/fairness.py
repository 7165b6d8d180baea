"""Benchmark: how long a small batch waits when another user's big batch is ahead of it.

    .venv/bin/python benchmarks/fairness.py [--big 300] [--small 2] [--latency 0.2] [--workers 2]

Starts a web server and a real qcluster on the local provider (LOCAL_PROVIDER_DELAY=<latency>)
under a temporary DATA_DIR (or DATABASE_URL / REDIS_URL). User A submits --big images; two seconds
later user B submits --small images. Prints how long B waited, how far A was when B finished, and
what a first-in-first-out queue would have made B wait (A's whole batch).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_throughput import ROOT, api, free_port, manage, wait_for


def env_for(data_dir: Path, latency: float, workers: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="imagegen.settings",
        Q_SYNC="false",
        Q_WORKERS=str(workers),
        LOCAL_PROVIDER_DELAY=str(latency),
        DEFAULT_MAX_IMAGES_PER_BATCH="100000",
        DEFAULT_DAILY_IMAGE_QUOTA="1000000",
        LOG_LEVEL="WARNING",
    )
    return env


def token_for(env: dict[str, str], name: str) -> str:
    manage(
        env,
        "shell",
        "-c",
        f"from django.contrib.auth.models import User; User.objects.get_or_create(username='{name}')",
    )
    return manage(env, "create_token", name)


def run(big: int, small: int, latency: float, workers: int, data_dir: Path) -> None:
    env = env_for(data_dir, latency, workers)
    manage(env, "migrate", "-v0")
    token_a, token_b = token_for(env, "user-a"), token_for(env, "user-b")
    port = free_port()
    web = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "imagegen.wsgi:application"]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for command in (web, [sys.executable, "manage.py", "qcluster"])
    ]
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_for(lambda: api("GET", f"{base}/providers/", token_a))
        time.sleep(3)  # let the workers start
        batch_a = api("POST", f"{base}/batches/", token_a, {"prompts": [f"a {n}" for n in range(big)]})
        time.sleep(2)
        submitted = time.monotonic()
        batch_b = api("POST", f"{base}/batches/", token_b, {"prompts": [f"b {n}" for n in range(small)]})
        while batch_b["status"] in ("queued", "running"):
            time.sleep(0.1)
            batch_b = api("GET", f"{base}/batches/{batch_b['id']}/", token_b)
        waited = time.monotonic() - submitted
        batch_a = api("GET", f"{base}/batches/{batch_a['id']}/", token_a)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    done_a = int(batch_a["completed"])  # type: ignore[call-overload]
    print(f"big batch: {big} images by user A; small batch: {small} images by user B, 2 s later")
    print(f"workers={workers} latency={latency}s database={'PostgreSQL' if 'DATABASE_URL' in os.environ else 'SQLite'}")
    print(f"small batch waited:  {waited:.1f}s (ended {batch_b['status']})")
    print(f"big batch then:      {done_a}/{big} images ({100 * done_a / big:.0f} %)")
    print(f"first-in-first-out:  about {big * latency / workers:.1f}s (all of A's images first)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=300)
    parser.add_argument("--small", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagegen-fairness-") as data_dir:
        run(options.big, options.small, options.latency, options.workers, Path(data_dir))


if __name__ == "__main__":
    main()
