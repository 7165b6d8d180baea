"""Batches and their generations: one row per requested image, kept after the batch ends."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class BatchStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")
    PARTIAL = "partial", _("Partially completed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class GenerationStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


FINISHED_GENERATION_STATUSES = (
    GenerationStatus.SUCCEEDED,
    GenerationStatus.FAILED,
    GenerationStatus.CANCELLED,
)


ACTIVE_BATCH_STATUSES = (BatchStatus.QUEUED, BatchStatus.RUNNING, BatchStatus.PAUSED)


class BatchPriority(models.IntegerChoices):
    LOW = 0, _("Low")
    NORMAL = 1, _("Normal")
    HIGH = 2, _("High")


class BatchSource(models.TextChoices):
    PORTAL = "portal", _("Portal")
    API = "api", _("API")
    OPENAI_API = "openai-api", _("OpenAI-compatible API")


class BatchQuerySet(models.QuerySet["Batch"]):
    def schedulable(self) -> BatchQuerySet:
        """Batches whose pending images the scheduler may hand out: not ended, paused or being cancelled."""
        return self.filter(
            status__in=(BatchStatus.QUEUED, BatchStatus.RUNNING),
            paused_at__isnull=True,
            cancel_requested_at__isnull=True,
        )


class Batch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches")
    name = models.CharField(_("name"), max_length=200)
    provider = models.CharField(_("provider"), max_length=50)
    model = models.CharField(_("model"), max_length=100)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    source = models.CharField(max_length=10, choices=BatchSource.choices, default=BatchSource.API)
    status = models.CharField(
        _("status"), max_length=12, choices=BatchStatus.choices, default=BatchStatus.QUEUED, db_index=True
    )
    # Order of work within one user's share of the workers (fairness between users comes first).
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=BatchPriority.choices, default=BatchPriority.NORMAL
    )
    total = models.PositiveIntegerField(_("total"), default=0)
    completed = models.PositiveIntegerField(_("completed"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    cancelled = models.PositiveIntegerField(_("cancelled"), default=0)
    # Images the owner deleted: still counted in total/completed/failed above (they were made and
    # charged), no longer listed. Kept by the lifecycle like the other counters.
    deleted = models.PositiveIntegerField(_("deleted"), default=0)
    # Kept by the lifecycle with the counters above, so lists never sum generations.
    cost_usd = models.DecimalField(_("estimated cost (USD)"), max_digits=12, decimal_places=5, default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # Deleted by its owner: hidden everywhere, files removed; the row stays for usage and quotas.
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    # Called with the batch's summary when it finishes (generation/webhooks.py); empty for none.
    webhook_url = models.CharField(_("webhook URL"), max_length=2000, blank=True, default="")

    objects = BatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        # Matches the history list's filter and order exactly, so a page is an index range scan.
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="batch_owner_newest"),
            models.Index(fields=["owner", "status", "-created_at", "-id"], name="batch_owner_status_newest"),
        ]
        permissions = [("submit_high_priority", _("Can submit high-priority batches"))]

    def __str__(self) -> str:
        return self.name

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def progress(self) -> float:
        return round(self.finished / self.total, 4) if self.total else 1.0

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_BATCH_STATUSES

    @property
    def listed(self) -> int:
        """Images still shown (not deleted by the owner)."""
        return self.total - self.deleted


class GenerationQuerySet(models.QuerySet["Generation"]):
    def due(self, now: datetime) -> GenerationQuerySet:
        """Not waiting out a backoff or a provider's Retry-After any more."""
        return self.filter(models.Q(not_before__isnull=True) | models.Q(not_before__lte=now))

    def listed(self) -> GenerationQuerySet:
        """Not deleted by their owner: what pages, the library and downloads show."""
        return self.filter(deleted_at__isnull=True)


class Generation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="generations")
    position = models.PositiveIntegerField(default=0)
    prompt = models.TextField(_("prompt"))
    negative_prompt = models.TextField(_("negative prompt"), blank=True)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    seed = models.BigIntegerField(_("seed"))
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=GenerationStatus.choices,
        default=GenerationStatus.PENDING,
        db_index=True,
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # A retry waits for its backoff (or a provider's Retry-After): no worker claims it before this.
    not_before = models.DateTimeField(null=True, blank=True)
    # 0 while on the batch's own provider; n after failing over to the batch's n-th fallback.
    provider_index = models.PositiveSmallIntegerField(default=0)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # The live worker running this attempt ("<node>:<pid>"); blank while dispatched but not started.
    worker = models.CharField(max_length=100, blank=True)
    # First 429 of the current wait: rate limits spend this time budget, not attempts.
    rate_limited_since = models.DateTimeField(null=True, blank=True)
    # A failure no retry can fix (content filtered, invalid request): "retry failed" skips it unless asked.
    error_permanent = models.BooleanField(default=False)
    error_code = models.CharField(_("error code"), max_length=60, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    # The provider and model that made (or last tried) this image: the batch's own, or a
    # fallback after failover. Blank until the first attempt.
    provider = models.CharField(_("provider"), max_length=50, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    quality = models.CharField(_("quality"), max_length=30, blank=True)
    cost_usd = models.DecimalField(_("estimated cost (USD)"), max_digits=10, decimal_places=5, null=True, blank=True)
    provider_latency_ms = models.PositiveIntegerField(_("provider latency (ms)"), null=True, blank=True)
    image = models.FileField(_("image"), upload_to="images/", max_length=255, blank=True)
    thumbnail = models.FileField(_("thumbnail"), upload_to="thumbnails/", max_length=255, blank=True)
    content_hash = models.CharField(_("SHA-256"), max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Starred by the owner (an image has one owner, so a column is the per-user scope); written
    # only by `generation.library`, with single-column UPDATEs that never race the lifecycle's.
    favourite = models.BooleanField(_("favourite"), default=False)
    # Deleted by the owner: files removed, row kept so rollups, quotas and batch counters stay true.
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    # The result cache (generation.result_cache): the hash of what this image asks for on the
    # batch's own provider, including its owner; blank when the batch opted out or has no explicit seed.
    cache_key = models.CharField(max_length=64, blank=True)
    # Made by copying an identical earlier image instead of calling the provider (cost 0).
    cached = models.BooleanField(_("cached"), default=False)
    # What the provider call would have cost: the money the cache saved.
    cache_saved_usd = models.DecimalField(max_digits=10, decimal_places=5, null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["position"]
        verbose_name = _("generation")
        verbose_name_plural = _("generations")
        indexes = [
            models.Index(fields=["batch", "position"]),
            models.Index(fields=["status", "lease_expires_at"]),
            models.Index(fields=["batch", "status", "position"]),
            # The rollup writer reads only what finished since its last run.
            models.Index(fields=["finished_at"], name="generation_finished_at"),
            # The library's "favourites only": the few starred images, in their batch's order.
            models.Index(
                fields=["batch", "position"], name="generation_favourites", condition=models.Q(favourite=True)
            ),
            # Cache look-ups: the key holds the owner, so this is an index per user.
            models.Index(
                fields=["cache_key", "status"], name="generation_cache_key", condition=~models.Q(cache_key="")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prompt[:60]} (#{self.position + 1})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_GENERATION_STATUSES


class Collection(models.Model):
    """A named set of a user's images (an image may be in several)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collections")
    name = models.CharField(_("name"), max_length=100)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    generations = models.ManyToManyField(Generation, through="CollectionItem", related_name="collections")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("collection")
        verbose_name_plural = _("collections")
        indexes = [models.Index(fields=["owner", "-created_at", "-id"], name="collection_owner_newest")]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="one_collection_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class CollectionItem(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="items")
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="collection_items")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("collection item")
        verbose_name_plural = _("collection items")
        constraints = [models.UniqueConstraint(fields=["collection", "generation"], name="one_membership_per_image")]

    def __str__(self) -> str:
        return f"{self.collection_id}: {self.generation_id}"


class ProviderKey(models.Model):
    """A user's own API key for a provider (bring your own key), encrypted at rest."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_keys")
    provider = models.CharField(_("provider"), max_length=50)
    encrypted_key = models.TextField()
    last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        ordering = ["provider"]
        verbose_name = _("provider key")
        verbose_name_plural = _("provider keys")
        constraints = [models.UniqueConstraint(fields=["owner", "provider"], name="one_key_per_provider")]

    def __str__(self) -> str:
        return f"{self.provider} …{self.last4}"

    @property
    def masked(self) -> str:
        return f"…{self.last4}"


class PermitKind(models.TextChoices):
    CONCURRENCY = "concurrency"
    RPM = "rpm"


class ProviderPermit(models.Model):
    """One slot of a provider's cluster-wide limit: held until released (concurrency) or for 60 s (rpm).

    A limit of N is N rows; taking a slot is a conditional UPDATE on a free row, so at most N
    holders exist whatever the number of workers or machines.
    """

    provider = models.CharField(max_length=50)
    kind = models.CharField(max_length=12, choices=PermitKind.choices)
    index = models.PositiveIntegerField()
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "kind", "index"], name="one_permit_per_index")]
        indexes = [models.Index(fields=["provider", "kind", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} #{self.index}"


class ProviderCooldown(models.Model):
    """A provider told us to slow down (429): nobody calls it before `until`."""

    provider = models.CharField(max_length=50, primary_key=True)
    until = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.provider} until {self.until}"


class SpooledResult(models.Model):
    """A provider's answer that could not be stored yet (full disk, storage down): kept so that
    storing is retried without paying for a second provider call."""

    generation = models.OneToOneField(Generation, on_delete=models.CASCADE, primary_key=True, related_name="spool")
    data = models.BinaryField()
    seed = models.BigIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("spooled result")
        verbose_name_plural = _("spooled results")

    def __str__(self) -> str:
        return f"spooled result of {self.generation_id}"


class WorkerNode(models.Model):
    """One running `qcluster`: its heartbeat says its workers are alive and own their claims."""

    id = models.CharField(max_length=64, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    workers = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now, db_index=True)
    # What the node's own checks found (monitor alive, results processed), for health and the dashboard.
    state = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("worker node")
        verbose_name_plural = _("worker nodes")

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"


class SchedulerLock(models.Model):
    """A single row that dispatchers lock so that two of them never hand out the same free slots."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # User id -> when the scheduler last gave them a slot: ties in fair share go to the longest waiting.
    served = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return "scheduler lock"


# Upper bounds (milliseconds) of the provider latency histogram kept in the rollups; the last is open-ended.
PROVIDER_LATENCY_BUCKETS_MS: tuple[float, ...] = (
    250, 500, 1000, 2000, 3000, 5000, 10000, 20000, 30000, 60000, 120000, float("inf"),
)  # fmt: skip
ROLLUP_BUCKET_FIELDS: tuple[str, ...] = tuple(f"le_{index}" for index in range(len(PROVIDER_LATENCY_BUCKETS_MS)))


class RollupResolution(models.TextChoices):
    MINUTE = "minute"
    HOUR = "hour"
    TOTAL = "total"


class GenerationRollup(models.Model):
    """Finished images of one owner on one provider and model, per minute, per hour or all time.

    Written only by `generation.rollups` from the generations that finished; the dashboard,
    /metrics and usage figures read these instead of scanning generations.
    """

    resolution = models.CharField(max_length=6, choices=RollupResolution.choices)
    # Start of the minute or hour; the epoch for the all-time row.
    start = models.DateTimeField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=100)
    succeeded = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)
    cancelled = models.PositiveBigIntegerField(default=0)
    rate_limited = models.PositiveBigIntegerField(default=0)
    retries = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=5, default=0)
    # Images taken from the result cache, and what their provider calls would have cost.
    cached = models.PositiveBigIntegerField(default=0)
    saved_usd = models.DecimalField(max_digits=16, decimal_places=5, default=0)
    latency_count = models.PositiveBigIntegerField(default=0)
    latency_ms_sum = models.PositiveBigIntegerField(default=0)
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
    # Failed images by error code: {"content_filtered": 2, ...}
    errors = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["resolution", "start", "owner", "provider", "model"], name="one_rollup_per_group"
            )
        ]
        indexes = [models.Index(fields=["resolution", "start"], name="rollup_resolution_start")]

    def __str__(self) -> str:
        return f"{self.resolution} {self.start:%Y-%m-%d %H:%M} {self.provider}/{self.model}"


class RollupState(models.Model):
    """How far the rollups have got: every generation that finished before `rolled_up_to` is counted."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    rolled_up_to = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rolled up to {self.rolled_up_to}"


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDeliveryQuerySet(models.QuerySet["WebhookDelivery"]):
    def due(self, now: datetime) -> WebhookDeliveryQuerySet:
        """Waiting to be sent and not held by a sender (a claim expires if its worker died)."""
        return self.filter(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=now).filter(
            models.Q(claimed_until__isnull=True) | models.Q(claimed_until__lt=now)
        )


class WebhookDelivery(models.Model):
    """One event sent to a batch's webhook URL; its id is the `webhook-id`, the same on every attempt."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=50)
    url = models.CharField(max_length=2000)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while one sender holds the delivery: until then nobody else sends it; "" until it starts.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True, default="")
    retry_until = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} {self.pk} ({self.status})"


class Comparison(models.Model):
    """An A/B comparison: the same prompts and seeds rendered by 2–4 configurations, one batch each."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="comparisons")
    name = models.CharField(_("name"), max_length=200)
    # Snapshots taken at creation: prompt i is rendered with seed i by every arm.
    prompts = models.JSONField(_("prompts"), default=list)
    seeds = models.JSONField(_("seeds"), default=list)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("comparison")
        verbose_name_plural = _("comparisons")
        indexes = [models.Index(fields=["owner", "-created_at", "-id"], name="comparison_owner_newest")]

    def __str__(self) -> str:
        return self.name


class ComparisonArm(models.Model):
    """One configuration of a comparison (provider, model, size, options) and the batch that renders it."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="arms")
    index = models.PositiveSmallIntegerField()
    label = models.CharField(_("label"), max_length=100)
    provider = models.CharField(_("provider"), max_length=50)
    model = models.CharField(_("model"), max_length=100)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    options = models.JSONField(_("options"), default=dict, blank=True)
    batch = models.OneToOneField(Batch, on_delete=models.CASCADE, related_name="comparison_arm")

    class Meta:
        ordering = ["comparison", "index"]
        constraints = [models.UniqueConstraint(fields=["comparison", "index"], name="one_arm_per_index")]
        indexes = [models.Index(fields=["provider", "model", "width", "height"], name="arm_configuration")]

    def __str__(self) -> str:
        return f"{self.comparison_id} #{self.index} {self.label}"

    @property
    def letter(self) -> str:
        """A, B, C, D: how pages name the arm."""
        return "ABCD"[self.index] if self.index < 4 else str(self.index + 1)


class ComparisonVote(models.Model):
    """The user's pick for one prompt of a comparison: an arm, or no arm for a tie."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="votes")
    prompt_index = models.PositiveIntegerField()
    winner = models.ForeignKey(ComparisonArm, null=True, blank=True, on_delete=models.CASCADE, related_name="wins")
    voted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "prompt_index"], name="one_vote_per_prompt"),
        ]

    def __str__(self) -> str:
        return f"{self.comparison_id} prompt {self.prompt_index}: {self.winner_id or 'tie'}"


class Rendition(models.Model):
    """A file derived from a generation's original image by post-processing (generation/output.py).

    One per image and settings: the unique hash makes a task delivered twice find the first one.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="renditions")
    settings_hash = models.CharField(max_length=64)
    settings = models.JSONField(default=dict)
    format = models.CharField(_("format"), max_length=10)
    file = models.FileField(_("file"), upload_to="renditions/", max_length=255)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    bytes = models.PositiveBigIntegerField(_("size (bytes)"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("rendition")
        verbose_name_plural = _("renditions")
        constraints = [
            models.UniqueConstraint(fields=["generation", "settings_hash"], name="rendition_once_per_settings")
        ]

    def __str__(self) -> str:
        return f"{self.generation_id} {self.format} {self.width}x{self.height}"


class OutputJob(models.Model):
    """Re-processing a batch's succeeded images with other output settings (no provider call).

    Progress is derived: done = renditions with this hash among the batch's images; failures
    are kept by image id, so a task delivered twice counts once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="output_jobs")
    settings = models.JSONField(default=dict)
    settings_hash = models.CharField(max_length=64)
    total = models.PositiveIntegerField(default=0)
    failed_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("re-processing job")
        verbose_name_plural = _("re-processing jobs")

    def __str__(self) -> str:
        return f"{self.batch_id} {self.settings_hash[:8]}"
