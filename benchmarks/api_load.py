"""Benchmark: read and write endpoints under load, with a long history, beside /health/live.

    .venv/bin/python benchmarks/api_load.py [--generations 100000] [--clients 20] [--seconds 5]
                                             [--database-url postgres://…/imagegen_bench] [--only batches,me]

Seeds a history (one user with N generations in batches of 250 over 60 days, plus a 500-image
batch; 20 more users with 1 000 each during the last day; 200 of the big user's prompts mention
蜂鳥 / hummingbird, whatever N is), rolls the monitoring figures up, starts the real WSGI app
under waitress on a free port, then drives every endpoint for T seconds with 1 client and with C
concurrent clients (stdlib HTTP, keep-alive) and prints, per endpoint, requests, errors,
p50/p95/p99 and the ratio of its p95 to /health/live's p95 measured in the same phase. SQLite in
a temporary DATA_DIR by default (`--data-dir` keeps it and reuses it next time); with
--database-url the database is emptied first (DROP SCHEMA public), so point it at a scratch one.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH_SIZE = 250
OTHER_USERS = 20
OTHER_USER_IMAGES = 1000
RARE_PROMPTS = 200
COLOURS = [
    ("red", "紅色"),
    ("blue", "藍色"),
    ("green", "綠色"),
    ("golden", "金色"),
    ("white", "白色"),
    ("black", "黑色"),
]
ANIMALS = [("cat", "貓"), ("dog", "狗"), ("fox", "狐狸"), ("owl", "貓頭鷹"), ("whale", "鯨魚"), ("horse", "馬"),
           ("rabbit", "兔子"), ("tiger", "老虎")]  # fmt: skip
PLACES = [("forest", "森林"), ("sea", "海邊"), ("city", "城市"), ("mountain", "山上"), ("desert", "沙漠")]
STYLES = ["watercolor", "oil painting", "photo, 35mm", "pixel art", "ink wash"]


def server_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="imagegen.settings",
        LOG_LEVEL="WARNING",
        Q_SYNC="false",
        API_RATE_LIMIT="100000000/min",  # the benchmark measures the endpoints, not the rate limiter
        DEFAULT_DAILY_IMAGE_QUOTA="100000000",
        DEFAULT_MAX_ACTIVE_BATCHES="100000000",
        METRICS_TOKEN="",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return env


def prompt(rng: random.Random, index: int) -> str:
    colour, animal, place = rng.choice(COLOURS), rng.choice(ANIMALS), rng.choice(PLACES)
    if index % 2:
        return f"一隻{colour[1]}的{animal[1]}在{place[1]}，{rng.choice(STYLES)}"
    return f"a {colour[0]} {animal[0]} in the {place[0]}, {rng.choice(STYLES)}"


# --- seeding (runs in this process, with Django set up on the benchmark's database) -------------


def reset_database(database_url: str) -> None:
    """Empty the scratch PostgreSQL database, creating it first when the server does not have it."""
    if not database_url:
        return
    from django.db import connection

    ensure_database(connection.settings_dict)
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")


def ensure_database(settings_dict: dict[str, Any]) -> None:
    import psycopg
    from psycopg import sql

    server = {"host": settings_dict["HOST"] or None, "port": settings_dict["PORT"] or None}
    login = {"user": settings_dict["USER"] or None, "password": settings_dict["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **server, **login) as maintenance:
        name = settings_dict["NAME"]
        if not maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def forget_submits() -> None:
    """The batches the `submit` endpoint queued (never worked on: no cluster runs here)."""
    from generation.models import Batch

    Batch.objects.filter(name="load", status="queued").delete()


def seed(generations: int, rng: random.Random) -> dict[str, Any]:
    """Create the users and their history with bulk inserts; returns ids and cookies for the load."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from accounts.services import token_create

    now = timezone.now()
    owner = User.objects.create_user("bench")
    staff = User.objects.create_user("bench-staff", is_staff=True, is_superuser=True)
    big_sizes = [BATCH_SIZE] * max(1, (generations - 500) // BATCH_SIZE)
    rare_every = max(1, (generations - 500) // RARE_PROMPTS)
    made = _seed_user(owner, big_sizes, now, rng, rare_every=rare_every)
    _seed_user(owner, [500], now - timedelta(hours=2), rng, rare_every=0, offset=made, days=0.01)
    for number in range(OTHER_USERS):
        other = User.objects.create_user(f"bench-{number}")
        # The other users were busy today: the dashboard's hour and day views have work to show.
        _seed_user(other, [BATCH_SIZE] * (OTHER_USER_IMAGES // BATCH_SIZE), now, rng, rare_every=0, days=1)
    return {
        "token": token_create(user=owner, name="bench").secret,
        "owner_session": _session(owner),
        "staff_session": _session(staff),
        "big_batch": str(big_batch_id(owner.pk)),
        "deep_cursor": deep_cursor(owner.pk),
        "batch": str(newest_batch_id(owner.pk)),
    }


def _seed_user(
    user: Any, sizes: list[int], now: Any, rng: random.Random, *, rare_every: int, offset: int = 0, days: float = 60
) -> int:
    from generation.models import Batch, Generation

    span = timedelta(days=days)
    made, pending_rows = offset, []
    for number, size in enumerate(sizes):
        created = now - span + span * (number + 1) / (len(sizes) + 1)
        batch = Batch(
            owner=user, name=f"batch {number} {rng.choice(ANIMALS)[0]}", provider="local", model="procedural-v1",
            parameters={"images_per_prompt": 1}, total=size, completed=size, status="completed",
            cost_usd=Decimal("0"), created_at=created, started_at=created, finished_at=created + timedelta(minutes=5),
        )  # fmt: skip
        batch.save()
        failed = 0
        for position in range(size):
            text = prompt(rng, made)
            if rare_every and made % rare_every == 0:
                text = f"一隻蜂鳥 hummingbird {text}"
            status = "failed" if rng.random() < 0.02 else "succeeded"
            failed += status == "failed"
            pending_rows.append(
                Generation(
                    batch=batch,
                    position=position,
                    prompt=text,
                    width=512,
                    height=512,
                    seed=rng.randrange(2**31),
                    status=status,
                    attempts=1,
                    provider="local",
                    model="procedural-v1",
                    cost_usd=Decimal("0") if status == "succeeded" else None,
                    provider_latency_ms=rng.randint(200, 4000),
                    error_code="" if status == "succeeded" else "timeout",
                    created_at=created,
                    started_at=created,
                    finished_at=created + timedelta(seconds=position % 300),
                )
            )
            made += 1
        if failed:
            Batch.objects.filter(pk=batch.pk).update(completed=size - failed, failed=failed, status="partial")
        if len(pending_rows) >= 5000:
            Generation.objects.bulk_create(pending_rows, batch_size=2500)
            pending_rows = []
    Generation.objects.bulk_create(pending_rows, batch_size=2500)
    return made


def _session(user: Any) -> str:
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return str(session.session_key)


def big_batch_id(owner_id: int) -> Any:
    from generation.models import Batch

    return Batch.objects.filter(owner_id=owner_id, total=500).values_list("id", flat=True).first()


def newest_batch_id(owner_id: int) -> Any:
    from generation.models import Batch

    return Batch.objects.filter(owner_id=owner_id).order_by("-created_at").values_list("id", flat=True).first()


def deep_cursor(owner_id: int) -> str:
    """The cursor of a full page three quarters down the big user's history.

    A full page at every history size: with 10 000 images three quarters down leaves half a page,
    and comparing half a page with a full one measures the page, not the depth.
    """
    from generation.models import Batch
    from generation.selectors import BATCH_ORDER
    from imagegen.pagination import DEFAULT_PAGE_SIZE, encode_cursor

    batches = Batch.objects.filter(owner_id=owner_id).order_by(*BATCH_ORDER)
    count = batches.count()
    return encode_cursor(batches[max(0, min(count * 3 // 4, count - DEFAULT_PAGE_SIZE - 1))], BATCH_ORDER)


def roll_up() -> None:
    from django.utils import timezone

    from generation.rollups import MINUTE, floor, rollup_advance

    target = floor(timezone.now(), MINUTE)
    while rollup_advance()["rolled_up_to"] < target:
        pass


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- load -------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    name: str
    path: str
    auth: str = "token"  # token | owner | staff | none
    method: str = "GET"
    body: Callable[[], bytes] | None = None
    ok: int = 200


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""


def endpoints(ids: dict[str, Any]) -> list[Endpoint]:
    counter = iter(range(10**9))
    submit = lambda: json.dumps({"prompts": [f"benchmark {next(counter)}"], "name": "load"}).encode()  # noqa: E731
    return [
        Endpoint("health_live", "/health/live", "none"),
        Endpoint("batch_list", "/api/v1/batches/"),
        Endpoint("batch_list_deep", f"/api/v1/batches/?cursor={ids['deep_cursor']}"),
        Endpoint("batch_search", "/api/v1/batches/?search=%E8%9C%82%E9%B3%A5"),
        Endpoint("batch_search_common", "/api/v1/batches/?search=%E8%B2%93"),
        Endpoint("batch_detail", f"/api/v1/batches/{ids['batch']}/"),
        Endpoint("batch_generations_500", f"/api/v1/batches/{ids['big_batch']}/generations/?page_size=100"),
        Endpoint("me", "/api/v1/me/"),
        Endpoint("submit", "/api/v1/batches/", method="POST", body=submit, ok=201),
        Endpoint("portal_history", "/batches/", "owner"),
        Endpoint("portal_search", "/batches/?q=%E8%9C%82%E9%B3%A5", "owner"),
        Endpoint("library", "/api/v1/generations/"),
        Endpoint("library_search", "/api/v1/generations/?search=%E8%9C%82%E9%B3%A5"),
        Endpoint("library_search_common", "/api/v1/generations/?search=%E8%B2%93"),
        Endpoint("dashboard_hour", "/monitoring/data?range=hour", "staff"),
        Endpoint("dashboard_day", "/monitoring/data?range=day", "staff"),
        Endpoint("dashboard_week", "/monitoring/data?range=week", "staff"),
        Endpoint("metrics", "/metrics", "none"),
    ]


def headers_for(endpoint: Endpoint, ids: dict[str, Any]) -> dict[str, str]:
    headers = {"Accept": "application/json" if endpoint.auth == "token" else "text/html", "Connection": "keep-alive"}
    if endpoint.auth == "token":
        headers["Authorization"] = f"Bearer {ids['token']}"
    elif endpoint.auth in ("owner", "staff"):
        headers["Cookie"] = f"sessionid={ids[endpoint.auth + '_session']}"
    if endpoint.body:
        headers["Content-Type"] = "application/json"
    return headers


def drive(port: int, endpoint: Endpoint, ids: dict[str, Any], clients: int, seconds: float) -> Result:
    result, lock = Result(), threading.Lock()
    headers = headers_for(endpoint, ids)
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        errors, first = 0, ""
        while time.monotonic() < deadline:
            body = endpoint.body() if endpoint.body else None
            started = time.perf_counter()
            try:
                connection.request(endpoint.method, endpoint.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status, payload = 0, str(error).encode()
            mine.append((time.perf_counter() - started) * 1000)
            if status != endpoint.ok:
                errors += 1
                first = first or f"{status} {payload[:200]!r}"
        connection.close()
        with lock:
            result.latencies += mine
            result.errors += errors
            result.first_error = result.first_error or first

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


def drive_and_forget(port: int, endpoint: Endpoint, ids: dict[str, Any], clients: int, seconds: float) -> Result:
    """`drive`, then remove what a writing endpoint made, so every read measures the seeded history.

    Otherwise the few hundred one-image batches that `submit` queues would top the history for
    every read after it (and differently at 1 and at 20 clients).
    """
    result = drive(port, endpoint, ids, clients, seconds)
    if endpoint.method != "GET":
        forget_submits()
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] if ordered else float("nan")


def report(phase: str, results: dict[str, Result]) -> None:
    health = percentile(results["health_live"].latencies, 0.95)
    print(f"\n{phase}")
    print(f"{'endpoint':<24}{'count':>7}{'errors':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'p95/live':>10}")
    for name, result in results.items():
        p95 = percentile(result.latencies, 0.95)
        print(
            f"{name:<24}{len(result.latencies):>7}{result.errors:>7}{percentile(result.latencies, 0.5):>9.1f}"
            f"{p95:>9.1f}{percentile(result.latencies, 0.99):>9.1f}{p95 / health:>10.1f}"
        )
        if result.errors:
            print(f"    first error: {result.first_error}")
    sys.stdout.flush()


def profile(chosen: list[Endpoint], ids: dict[str, Any], *, sort: str = "tottime", repeat: int = 20) -> None:
    """CPU profile of each endpoint in this process (Django's test client), top entries by own time."""
    import cProfile
    import pstats

    from django.test import Client

    client = Client()
    for endpoint in chosen:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers_for(endpoint, ids).items()}
        call = getattr(client, endpoint.method.lower())

        def once(endpoint: Endpoint = endpoint, call: Any = call, extra: dict[str, str] = extra) -> None:
            data = endpoint.body() if endpoint.body else None
            kwargs = {"data": data, "content_type": "application/json"} if data else {}
            call(endpoint.path, **kwargs, **extra)

        once()
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(repeat):
            once()
        profiler.disable()
        print(f"\n=== {endpoint.name}: CPU per request")
        pstats.Stats(profiler).sort_stats(sort).print_stats(40 if sort == "cumulative" else 15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int) -> None:
    for _ in range(300):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health/live")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads (run.py's default)")
    parser.add_argument("--database-url", default="", help="a scratch PostgreSQL database (emptied first)")
    parser.add_argument("--only", default="", help="comma-separated endpoint names (health_live always runs)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile-sort", default="tottime", help="pstats order: tottime or cumulative")
    parser.add_argument("--data-dir", default="", help="keep the data here and reuse it on the next run")
    parser.add_argument("--profile", default="", help="comma-separated endpoints to profile in-process instead")
    args = parser.parse_args()

    kept = contextlib.nullcontext(args.data_dir) if args.data_dir else None
    with kept or tempfile.TemporaryDirectory(prefix="imagegen-load-") as tmp:
        Path(tmp).mkdir(parents=True, exist_ok=True)
        ids_file = Path(tmp) / "bench-ids.json"
        env = server_env(Path(tmp), args.database_url)
        os.environ.update(env)
        if not args.database_url:
            os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        started = time.monotonic()
        if ids_file.exists():  # a kept --data-dir: reuse its history, without the last run's submits
            ids = json.loads(ids_file.read_text())
            call_command("migrate", verbosity=0)
            forget_submits()
        else:
            if not args.database_url:  # a --data-dir whose seeding never finished: start it again from empty
                for suffix in ("", "-wal", "-shm"):
                    (Path(tmp) / f"imagegen.sqlite3{suffix}").unlink(missing_ok=True)
            reset_database(args.database_url)
            call_command("migrate", verbosity=0)
            ids = seed(args.generations, random.Random(args.seed))
            ids_file.write_text(json.dumps(ids))
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("compile_catalogs", verbosity=0)
        seeded = time.monotonic() - started
        roll_up()
        analyze()
        connections.close_all()
        engine = "PostgreSQL" if args.database_url else "SQLite"
        if args.profile:
            profile([e for e in endpoints(ids) if e.name in args.profile.split(",")], ids, sort=args.profile_sort)
            return
        print(f"{engine}: seeded {args.generations} + {OTHER_USERS * OTHER_USER_IMAGES} generations in {seeded:.0f} s")

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", f"--threads={args.threads}",
             "imagegen.wsgi:application"],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(port)
            chosen = [e for e in endpoints(ids) if not args.only or e.name in [*args.only.split(","), "health_live"]]
            for e in chosen:  # warm up each endpoint once (imports, template compilation, caches)
                drive(port, e, ids, 1, 0.2)
            for clients in (1, args.clients):
                results = {e.name: drive_and_forget(port, e, ids, clients, args.seconds) for e in chosen}
                report(f"{clients} client(s), {args.seconds:g} s per endpoint, {engine}, {args.generations} "
                       f"generations for one user (+{OTHER_USERS}×{OTHER_USER_IMAGES})", results)  # fmt: skip
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
