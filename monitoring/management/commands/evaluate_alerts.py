"""`manage.py evaluate_alerts`: run the alert rules once now (also usable from cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from monitoring.alerts import alerts_evaluate
from monitoring.models import AlertState


class Command(BaseCommand):
    help = "Evaluate every alert rule now, send notifications for changes and print the states."

    def handle(self, *args: Any, **options: Any) -> None:
        for event in alerts_evaluate():
            self.stdout.write(f"{event.kind}: {event.key}: {event.message}")
        for state in AlertState.objects.all():
            label = self.style.ERROR("FIRING") if state.firing else self.style.SUCCESS("ok")
            self.stdout.write(f"{label}  {state.key}  {state.message}")
