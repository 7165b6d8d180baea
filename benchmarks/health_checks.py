"""Print what each readiness check costs (p50/p95, milliseconds) on a database with many generations.

Usage: .venv/bin/python benchmarks/health_checks.py [generations] [rounds]
Uses a fresh SQLite database under a temporary DATA_DIR (or DATABASE_URL when set: use a scratch one).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagegen.settings")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="imagegen-bench-"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from datetime import timedelta  # noqa: E402

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from generation.models import Batch, Generation, GenerationStatus, WorkerNode  # noqa: E402
from monitoring import health  # noqa: E402


def populate(total: int) -> None:
    """Like a platform that has run a while: 1000 waiting, 8 running on a live node, the rest finished."""
    owner, _ = User.objects.get_or_create(username="bench")
    now = timezone.now()
    WorkerNode.objects.update_or_create(
        id="bench-node", defaults={"host": "bench", "pid": 1, "workers": 8, "heartbeat_at": now, "state": {}}
    )
    batches = [Batch.objects.create(owner=owner, name=f"b{n}", provider="local", model="local") for n in range(20)]
    rows = []
    for n in range(total):
        status = GenerationStatus.PENDING if n < 1000 else GenerationStatus.SUCCEEDED
        if n < 8:
            status = GenerationStatus.RUNNING
        ago = now - timedelta(seconds=30) if status == GenerationStatus.RUNNING else now - timedelta(hours=1)
        rows.append(
            Generation(
                batch=batches[n % 20], position=n, prompt="p", width=64, height=64, seed=n, status=status,
                created_at=ago, started_at=ago if status != GenerationStatus.PENDING else None,
                finished_at=ago if status == GenerationStatus.SUCCEEDED else None,
                worker="bench-node|1" if status == GenerationStatus.RUNNING else "",
                lease_expires_at=now + timedelta(hours=1) if status == GenerationStatus.RUNNING else None,
            )
        )  # fmt: skip
    Generation.objects.bulk_create(rows, batch_size=2000)


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    call_command("migrate", verbosity=0)
    populate(total)
    WorkerNode.objects.update(heartbeat_at=timezone.now() + timedelta(hours=1))  # alive for the whole run
    print(f"{total} generations (1000 waiting, 8 running), {rounds} rounds per check")
    for name in health.READINESS:
        report(name, rounds)
    whole(rounds)
    # The rare path: work waits and nothing is in flight, so the stall clock is read (table scans).
    Generation.objects.filter(status=GenerationStatus.RUNNING).update(status=GenerationStatus.PENDING)
    print("nothing in flight (the stall clock is read):")
    report("progress", rounds)
    whole(rounds)


def report(name: str, rounds: int) -> None:
    samples = sorted(health.run_checks([name])[name].duration_ms for _ in range(rounds))
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(f"  {name:<9} p50 {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms")


def whole(rounds: int) -> None:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        health.run_checks()
        samples.append((time.perf_counter() - started) * 1000)
    print(f"  all of /health/ready: p50 {statistics.median(samples):.1f} ms")


if __name__ == "__main__":
    main()
