"""Schedule monitoring work through django-q2: sampling and alerts every minute, pruning and backup daily."""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone

EVERY_MINUTE = {"schedule_type": "I", "minutes": 1, "repeats": -1}
SCHEDULES = {
    "monitoring-sample": {"func": "monitoring.tasks.sample", **EVERY_MINUTE},
    "monitoring-alerts": {"func": "monitoring.tasks.evaluate_alerts", **EVERY_MINUTE},
    "monitoring-prune": {"func": "monitoring.tasks.prune", "schedule_type": "D", "repeats": -1, "hour": 3, "minute": 30},
    "monitoring-backup": {"func": "monitoring.tasks.backup", "schedule_type": "D", "repeats": -1, "hour": 3, "minute": 0},
}


def _next(hour, minute):
    now = timezone.localtime()
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


def add_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, spec in SCHEDULES.items():
        spec = dict(spec)
        hour, minute = spec.pop("hour", None), spec.pop("minute", None)
        if hour is not None:
            spec["next_run"] = _next(hour, minute)  # daily, at a quiet time of night
        Schedule.objects.update_or_create(name=name, defaults=spec)


def remove_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=list(SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedules, remove_schedules)]
