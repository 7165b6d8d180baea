"""django-q2 scheduled tasks of the monitoring app: thin callers of its services."""

from __future__ import annotations

from django.conf import settings

from accounts.idempotency import idempotency_keys_prune
from monitoring.alerts import alerts_evaluate
from monitoring.availability import availability_probe
from monitoring.backup import backup_create
from monitoring.services import metrics_prune, system_sample_record


def sample() -> int:
    return system_sample_record().pk


def evaluate_alerts() -> list[str]:
    return [f"{event.key} {event.kind}" for event in alerts_evaluate()]


def prune() -> dict[str, int]:
    """The daily clean-up: old metrics, and Idempotency-Keys past IDEMPOTENCY_TTL_HOURS."""
    return {**metrics_prune(), "idempotency_keys": idempotency_keys_prune()}


def backup() -> str:
    return str(backup_create(destination=settings.BACKUP_DIR, keep=settings.BACKUP_KEEP))


def probe() -> str:
    sample = availability_probe()
    return "skipped: probed already this minute" if sample is None else str(sample)
