"""Readings of this host with psutil, and of the django-q2 clusters from their stats."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil
from django.conf import settings
from django.utils import timezone
from django_q.status import Stat

# A cluster writes its stats every guard cycle (0.5 s); older than this and it is gone.
WORKER_STALE_AFTER = timedelta(seconds=30)
WEB_MARKERS = ("waitress", "runserver", "gunicorn", "uvicorn")
WORKER_MARKER = "qcluster"


@dataclass(frozen=True)
class ProcessGroup:
    processes: int
    rss_bytes: int


def disk_usage(path: Path | str | None = None) -> psutil._common.sdiskusage:
    """Space on the file system that holds `path` (default: the data directory: database, backups, logs)."""
    return psutil.disk_usage(str(existing_ancestor(Path(path or settings.DATA_DIR))))


def existing_ancestor(path: Path) -> Path:
    """`path`, or its nearest parent that exists (MEDIA_ROOT is only created by the first image)."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def live_clusters() -> list[Stat]:
    now = timezone.now()
    return [stat for stat in Stat.get_all() if now - stat.timestamp < WORKER_STALE_AFTER]


def project_processes() -> dict[str, ProcessGroup]:
    """Memory of this project's web and worker processes, told apart by their command lines."""
    groups = {"web": [0, 0], "worker": [0, 0]}
    root = str(Path(settings.BASE_DIR))
    for process in psutil.process_iter(["pid", "cmdline", "memory_info", "cwd", "uids"]):
        role = _role(process.info, root)
        if role and process.info["memory_info"] is not None:
            groups[role][0] += 1
            groups[role][1] += process.info["memory_info"].rss
    return {role: ProcessGroup(processes=count, rss_bytes=rss) for role, (count, rss) in groups.items()}


def _role(info: dict[str, object], root: str) -> str | None:
    if info.get("cwd") != root and root not in " ".join(info.get("cmdline") or []):  # type: ignore[arg-type]
        return None
    command = " ".join(info.get("cmdline") or [])  # type: ignore[arg-type]
    if WORKER_MARKER in command:
        return "worker"
    if any(marker in command for marker in WEB_MARKERS):
        return "web"
    return None


def host_reading() -> dict[str, float]:
    """System-wide CPU (over a short interval), memory and load."""
    load_1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return {
        "cpu_percent": psutil.cpu_percent(interval=0.25),
        "memory_percent": psutil.virtual_memory().percent,
        "load_1": round(load_1, 2),
    }
