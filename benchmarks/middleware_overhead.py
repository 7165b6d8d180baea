"""Print what the request monitoring middleware adds to a request (p50/p95/p99, microseconds).

Usage: .venv/bin/python benchmarks/middleware_overhead.py [requests]
Logging goes to the real JSON file handler (under a temporary DATA_DIR); stdout is muted.
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

import django

django.setup()

import logging  # noqa: E402

from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from monitoring.middleware import RequestMonitoringMiddleware  # noqa: E402


def view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


def timings(handler: object, requests: int) -> list[float]:
    factory, samples = RequestFactory(), []
    for _ in range(requests):
        request = factory.get("/batches/")
        started = time.perf_counter_ns()
        handler(request)  # type: ignore[operator]
        samples.append((time.perf_counter_ns() - started) / 1000)
    return sorted(samples)


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - a terminal would dominate the figure
    bare, wrapped = view, RequestMonitoringMiddleware(view)
    timings(wrapped, 500)  # warm up
    base, full = timings(bare, requests), timings(wrapped, requests)
    for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        index = int(fraction * requests) - 1
        added = full[index] - base[index]
        print(f"{name}: bare {base[index]:7.1f} µs  with middleware {full[index]:7.1f} µs  added {added:7.1f} µs")
    print(f"mean added: {statistics.fmean(full) - statistics.fmean(base):.1f} µs over {requests} requests")


if __name__ == "__main__":
    main()
