"""Print the server time ImageGen spends refusing hostile batch requests (the issue 9 attack shapes).

Usage: .venv/bin/python benchmarks/input_budget.py [repeats]
Runs the whole Django stack in-process (middleware, authentication, JSON parsing, validation)
against a throw-away SQLite database; prints the median wall and CPU time per request and the
answer. The target: a 2.5 MB template request is refused in under 100 ms of server time.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagegen.settings")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="imagegen-bench-"))

import django

django.setup()

import logging  # noqa: E402

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.services import token_create  # noqa: E402

# Just under DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB), so the body is read and parsed, not refused unread.
CASES = {
    "2.5 MB of templates (1000 x 2.5 KB)": [("{red|blue} fox " * 160)[:2500]] * 1000,
    "60 x '{ }'*500 (reported: 51 s)": ["{ }" * 500] * 60,
    "'{a|b}'*4000 (reported: RecursionError after 16 s)": ["{a|b}" * 4000],
    "100 KB of plain text templates": ["a quiet harbour at dawn " * 40] * 100,
}


def measure(client: Client, token: str, prompts: list[str], repeats: int) -> tuple[float, float, int, str, int]:
    body = json.dumps({"prompts": prompts, "template": True})
    walls, cpus, answer = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.thread_time()
        answer = client.post("/api/v1/batches/", body, content_type="application/json", HTTP_AUTHORIZATION=token)
        cpus.append((time.thread_time() - cpu) * 1000)
        walls.append((time.perf_counter() - wall) * 1000)
    assert answer is not None
    code = answer.json()["error"]["code"] if answer.status_code >= 400 else "accepted"
    return statistics.median(walls), statistics.median(cpus), answer.status_code, code, len(body)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    logging.disable(logging.CRITICAL)  # the request log would be part of the figure otherwise
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench")  # no password: it signs in with a token
    token = f"Bearer {token_create(user=user, name='bench').secret}"
    client = Client()
    for name, prompts in CASES.items():
        wall, cpu, status, code, size = measure(client, token, prompts, repeats)
        print(f"{name:52} {size / 1e6:5.2f} MB  {status} {code:22} wall {wall:7.1f} ms  cpu {cpu:7.1f} ms")


if __name__ == "__main__":
    main()
