"""Benchmark: 200 prompts through the whole platform versus a plain 16-thread script, same fake provider.

    .venv/bin/python benchmarks/batch_throughput.py [--prompts 200] [--latency 0.5] [--concurrency 16]

A local server speaks the OpenAI Images format with a fixed latency per call. The platform run
goes through the real path: API submit, a real qcluster with Q_WORKERS=<concurrency> and
OPENAI_MAX_CONCURRENCY=<concurrency>, image storage, thumbnails and the database (SQLite under a
temporary DATA_DIR, or whatever DATABASE_URL / REDIS_URL point at). The baseline sends the same
requests from a thread pool and saves each PNG and a WebP thumbnail. Prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SIZE = 512


def make_png() -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").resize((SIZE, SIZE)).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def start_fake_openai(latency: float) -> ThreadingHTTPServer:
    body = json.dumps({"created": 0, "data": [{"b64_json": base64.b64encode(make_png()).decode()}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def plain_script(url: str, prompts: int, threads: int, out: Path) -> float:
    """The baseline: what a careful hand-written script would do with the same provider."""
    out.mkdir(parents=True, exist_ok=True)

    def one(index: int) -> None:
        payload = json.dumps({"model": "dall-e-2", "prompt": f"prompt {index}", "n": 1, "size": "512x512"}).encode()
        request = urllib.request.Request(url, payload, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            data = base64.b64decode(json.loads(response.read())["data"][0]["b64_json"])
        image = Image.open(io.BytesIO(data))
        image.save(out / f"{index}.png", format="PNG", compress_level=3)
        image.thumbnail((256, 256))
        image.save(out / f"{index}.webp", format="WEBP", quality=80)

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(prompts)))
    return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def platform_env(data_dir: Path, provider_url: str, concurrency: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="imagegen.settings",
        Q_SYNC="false",
        Q_WORKERS=str(concurrency),
        OPENAI_API_KEY="sk-benchmark",
        OPENAI_BASE_URL=provider_url,
        OPENAI_MAX_CONCURRENCY=os.environ.get("BENCH_CAP", str(concurrency)),
        OPENAI_RPM="0",
        LOG_LEVEL="WARNING",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr)
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def api(method: str, url: str, token: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=60) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def platform_run(provider_url: str, prompts: int, concurrency: int, data_dir: Path) -> float:
    env = platform_env(data_dir, provider_url, concurrency)
    manage(env, "migrate", "-v0")
    manage(
        env, "shell", "-c", "from django.contrib.auth.models import User; User.objects.get_or_create(username='bench')"
    )
    token = manage(env, "create_token", "bench")
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=8", "imagegen.wsgi:application"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        wait_for(lambda: api("GET", f"{base}/providers/", token))
        time.sleep(3)  # let the cluster's workers start before the clock does
        body = {"provider": "openai", "model": "dall-e-2", "width": SIZE, "height": SIZE,
                "prompts": [f"prompt {i}" for i in range(prompts)]}  # fmt: skip
        started = time.monotonic()
        batch = api("POST", f"{base}/batches/", token, body)
        while batch["status"] in ("queued", "running"):
            time.sleep(0.2)
            batch = api("GET", f"{base}/batches/{batch['id']}/", token)
        elapsed = time.monotonic() - started
        if batch["completed"] != prompts:
            sys.exit(f"platform run ended {batch['status']} with {batch['completed']}/{prompts} images")
        return elapsed
    finally:
        for process in (web, cluster):
            process.terminate()  # leaders only: the cluster stops its own workers in order
        for process in (web, cluster):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def wait_for(check: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()  # type: ignore[operator]
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=16)
    options = parser.parse_args()
    server = start_fake_openai(options.latency)
    url = f"http://127.0.0.1:{server.server_port}/v1"
    backend = "PostgreSQL" if "postgres" in os.environ.get("DATABASE_URL", "") else "SQLite"
    broker = "Redis" if os.environ.get("REDIS_URL") else "ORM"
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as tmp:
        baseline = plain_script(f"{url}/images/generations", options.prompts, options.concurrency, Path(tmp) / "plain")
        platform = platform_run(url, options.prompts, options.concurrency, Path(tmp) / "platform")
    ideal = options.prompts / options.concurrency * options.latency
    print(f"database={backend} broker={broker} prompts={options.prompts} latency={options.latency}s "
          f"concurrency={options.concurrency} (ideal {ideal:.1f}s)")  # fmt: skip
    print(f"plain script: {baseline:.2f}s")
    print(f"platform:     {platform:.2f}s")
    print(f"ratio:        {platform / baseline:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
