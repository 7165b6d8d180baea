"""Availability samples of the synthetic probe, nodes' configuration fingerprints, and the probe's schedule."""

from django.db import migrations, models
from django.utils import timezone

PROBE = {"func": "monitoring.tasks.probe", "schedule_type": "I", "minutes": 1, "repeats": -1}


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(name="monitoring-probe", defaults=PROBE)


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="monitoring-probe").delete()


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0003_healthprobe")]

    operations = [
        migrations.CreateModel(
            name="AvailabilitySample",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("taken_at", models.DateTimeField(db_index=True, default=timezone.now, verbose_name="time")),
                ("seconds", models.FloatField(verbose_name="seconds covered")),
                ("up", models.BooleanField(verbose_name="up")),
                ("web_ok", models.BooleanField(verbose_name="answered")),
                ("work_ok", models.BooleanField(blank=True, null=True, verbose_name="did work")),
                ("detail", models.TextField(blank=True, verbose_name="detail")),
            ],
            options={
                "verbose_name": "availability sample",
                "verbose_name_plural": "availability samples",
                "ordering": ["-taken_at"],
            },
        ),
        migrations.CreateModel(
            name="DeployNode",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200, unique=True, verbose_name="node")),
                ("version", models.CharField(max_length=50, verbose_name="version")),
                ("fingerprints", models.JSONField(default=dict, verbose_name="fingerprints")),
                ("checked_at", models.DateTimeField(default=timezone.now, verbose_name="last checked")),
            ],
            options={"verbose_name": "deployment node", "verbose_name_plural": "deployment nodes", "ordering": ["name"]},
        ),
        migrations.RunPython(add_schedule, remove_schedule),
    ]
