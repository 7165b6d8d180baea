"""Stored measurements: per-minute request aggregates, system samples, event counters and alerts."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Upper bounds (milliseconds) of the request latency histogram; the last bucket is open-ended.
# Fixed bounds let histograms from many processes and minutes be added together.
LATENCY_BUCKETS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, float("inf"))
BUCKET_FIELDS: tuple[str, ...] = tuple(f"le_{index}" for index in range(len(LATENCY_BUCKETS_MS)))


class RequestStats(models.Model):
    """Counts and a latency histogram for one route and method; `minute` is null for the all-time total."""

    minute = models.DateTimeField(null=True, blank=True, db_index=True)
    route = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    count = models.PositiveBigIntegerField(default=0)
    client_errors = models.PositiveBigIntegerField(default=0)
    server_errors = models.PositiveBigIntegerField(default=0)
    # 429s, also counted in client_errors: shown apart so a self-throttling client is visible.
    rate_limited = models.PositiveBigIntegerField(default=0)
    duration_ms_sum = models.FloatField(default=0)
    duration_ms_max = models.FloatField(default=0)
    le_0 = models.PositiveBigIntegerField(default=0)
    le_1 = models.PositiveBigIntegerField(default=0)
    le_2 = models.PositiveBigIntegerField(default=0)
    le_3 = models.PositiveBigIntegerField(default=0)
    le_4 = models.PositiveBigIntegerField(default=0)
    le_5 = models.PositiveBigIntegerField(default=0)
    le_6 = models.PositiveBigIntegerField(default=0)
    le_7 = models.PositiveBigIntegerField(default=0)
    le_8 = models.PositiveBigIntegerField(default=0)
    le_9 = models.PositiveBigIntegerField(default=0)
    le_10 = models.PositiveBigIntegerField(default=0)
    le_11 = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("request statistics")
        verbose_name_plural = _("request statistics")
        constraints = [
            models.UniqueConstraint(fields=["minute", "route", "method"], name="request_stats_unique_minute"),
            models.UniqueConstraint(
                fields=["route", "method"], condition=models.Q(minute__isnull=True), name="request_stats_unique_total"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.route} @ {self.minute or 'total'}"

    @property
    def buckets(self) -> list[int]:
        return [getattr(self, name) for name in BUCKET_FIELDS]


class SystemSample(models.Model):
    """One reading of the host and the queue, taken every minute by the sampler task."""

    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    cpu_percent = models.FloatField(_("CPU %"))
    memory_percent = models.FloatField(_("memory %"))
    load_1 = models.FloatField(_("load (1 min)"))
    web_rss_bytes = models.PositiveBigIntegerField(_("web memory"), default=0)
    web_processes = models.PositiveIntegerField(default=0)
    worker_rss_bytes = models.PositiveBigIntegerField(_("worker memory"), default=0)
    worker_processes = models.PositiveIntegerField(default=0)
    disk_free_bytes = models.PositiveBigIntegerField(_("free disk"))
    disk_total_bytes = models.PositiveBigIntegerField(_("disk size"))
    queued = models.PositiveIntegerField(_("queued"), default=0)
    running = models.PositiveIntegerField(_("running"), default=0)
    oldest_queued_seconds = models.FloatField(_("oldest queued (s)"), null=True, blank=True)
    broker_queue = models.PositiveIntegerField(_("broker queue"), default=0)
    workers_alive = models.PositiveIntegerField(_("worker processes alive"), default=0)

    class Meta:
        ordering = ["-taken_at"]
        verbose_name = _("system sample")
        verbose_name_plural = _("system samples")

    def __str__(self) -> str:
        return f"sample {self.taken_at:%Y-%m-%d %H:%M}"


class EventCount(models.Model):
    """A named counter per minute, e.g. the sweeper's re-deliveries or finished tasks."""

    minute = models.DateTimeField(db_index=True)
    name = models.CharField(max_length=100)
    value = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("event count")
        verbose_name_plural = _("event counts")
        constraints = [models.UniqueConstraint(fields=["minute", "name"], name="event_count_unique_minute")]

    def __str__(self) -> str:
        return f"{self.name} @ {self.minute}: {self.value}"


class AlertState(models.Model):
    """Where each alert rule stands now; one row per rule (and per provider for provider rules)."""

    key = models.CharField(_("rule"), max_length=150, unique=True)
    firing = models.BooleanField(_("firing"), default=False)
    since = models.DateTimeField(_("since"), null=True, blank=True)
    clear_since = models.DateTimeField(null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)

    class Meta:
        ordering = ["key"]
        verbose_name = _("alert state")
        verbose_name_plural = _("alert states")

    def __str__(self) -> str:
        return f"{self.key}: {'firing' if self.firing else 'ok'}"


class AlertKind(models.TextChoices):
    FIRED = "fired", _("Fired")
    RESOLVED = "resolved", _("Resolved")


class AlertEvent(models.Model):
    """An alert that fired or cleared, and whether its notifications were delivered."""

    key = models.CharField(_("rule"), max_length=150, db_index=True)
    kind = models.CharField(_("kind"), max_length=10, choices=AlertKind.choices)
    message = models.TextField(_("message"))
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    delivered = models.JSONField(_("delivered to"), default=list, blank=True)
    delivery_errors = models.JSONField(_("delivery errors"), default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("alert event")
        verbose_name_plural = _("alert events")

    def __str__(self) -> str:
        return f"{self.key} {self.kind} at {self.created_at:%Y-%m-%d %H:%M}"


class AvailabilitySample(models.Model):
    """One run of the synthetic probe: did the platform answer and do work, and for how long that holds.

    `seconds` is the stretch of time this sample stands for (since the previous one, at most a
    probe gap); a stretch with no probe at all is stored as its own down sample, so availability
    is simply up seconds over all seconds.
    """

    taken_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    seconds = models.FloatField(_("seconds covered"))
    up = models.BooleanField(_("up"))
    web_ok = models.BooleanField(_("answered"))
    work_ok = models.BooleanField(_("did work"), null=True, blank=True)
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        ordering = ["-taken_at"]
        verbose_name = _("availability sample")
        verbose_name_plural = _("availability samples")

    def __str__(self) -> str:
        return f"{'up' if self.up else 'down'} at {self.taken_at:%Y-%m-%d %H:%M}"


class DeployNode(models.Model):
    """What one node reported about its configuration the last time `check_deploy` ran on it.

    Nodes compare fingerprints (never the secrets themselves) to find a node that signs tasks
    with another key, talks to another broker or writes to another store.
    """

    name = models.CharField(_("node"), max_length=200, unique=True)
    version = models.CharField(_("version"), max_length=50)
    fingerprints = models.JSONField(_("fingerprints"), default=dict)
    checked_at = models.DateTimeField(_("last checked"), default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("deployment node")
        verbose_name_plural = _("deployment nodes")

    def __str__(self) -> str:
        return self.name


class HealthProbe(models.Model):
    """One row that the `database` health check rewrites, to prove the database still takes writes."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    written_at = models.DateTimeField(default=timezone.now)
    written_by = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"health probe written {self.written_at:%Y-%m-%d %H:%M:%S} by {self.written_by}"
