"""Account models: API tokens (stored hashed), profiles, quota overrides, rate-limit counters, audit log."""

from __future__ import annotations

import os
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.crypto import secret_decrypt, secret_encrypt

TOTP_KEY_PURPOSE = "imagegen totp keys"


class ApiToken(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    # The token is "ig_<prefix>_<secret>": the prefix finds the row, the secret is only hashed.
    prefix = models.CharField(max_length=12, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} (ig_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class AuditEvent(models.Model):
    """One security-relevant event: who did what, from where. Written only by accounts.audit."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    event = models.CharField(_("event"), max_length=60, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    username = models.CharField(_("username"), max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event} {self.username}"


class Profile(models.Model):
    """What a user chooses for themselves: for now, the language of the portal."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="profile"
    )
    language = models.CharField(_("language"), max_length=10, blank=True, choices=settings.LANGUAGES)

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return str(self.user)


class UserQuota(models.Model):
    """Per-user overrides of the quota defaults (blank = the default), and the row that
    serialises a user's batch submissions so quota checks are atomic."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="quota"
    )
    daily_images = models.PositiveIntegerField(
        _("images per day"), null=True, blank=True, help_text=_("Blank: the default from DEFAULT_DAILY_IMAGE_QUOTA.")
    )
    max_images_per_batch = models.PositiveIntegerField(
        _("images per batch"),
        null=True,
        blank=True,
        help_text=_("Blank: the default from DEFAULT_MAX_IMAGES_PER_BATCH."),
    )
    max_active_batches = models.PositiveIntegerField(
        _("active batches"), null=True, blank=True, help_text=_("Blank: the default from DEFAULT_MAX_ACTIVE_BATCHES.")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("quota")
        verbose_name_plural = _("quotas")

    def __str__(self) -> str:
        return str(self.user)


class QuotaCharge(models.Model):
    """Images charged to a user's daily quota on the day they were re-queued.

    A batch's images count on the day they were created (by their own rows). Images queued again
    later (a retry of an older batch) count on the day of the retry, through one row here per
    retry, so going back to old batches cannot spend more than today's quota.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota_charges")
    images = models.PositiveIntegerField()
    charged_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=40, default="retry")

    class Meta:
        indexes = [models.Index(fields=["user", "charged_at"])]

    def __str__(self) -> str:
        return f"{self.user}: {self.images} ({self.reason})"


class RateLimitCounter(models.Model):
    """One rate-limit window of one key, used when no Redis is configured (see accounts.ratelimits)."""

    key = models.CharField(max_length=200, unique=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


def new_totp_key() -> str:
    """A fresh random 20-byte TOTP secret, encrypted for storage."""
    return secret_encrypt(os.urandom(20), purpose=TOTP_KEY_PURPOSE)


class Authenticator(TimestampMixin, ThrottlingMixin, Device):
    """A TOTP authenticator app, like django-otp's TOTPDevice but with its shared secret encrypted.

    TOTPDevice keeps the secret in plain hex, so anyone who reads the database (a backup, a
    replica) could generate every user's codes. Verification is TOTPDevice's own code, reading
    the secret through `bin_key`, which decrypts it.
    """

    encrypted_key = models.TextField(default=new_totp_key)
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1)

    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    config_url = TOTPDevice.config_url
    _read_str_from_settings = TOTPDevice._read_str_from_settings

    class Meta(Device.Meta):
        verbose_name = _("authenticator")
        verbose_name_plural = _("authenticators")

    @property
    def bin_key(self) -> bytes:
        return secret_decrypt(self.encrypted_key, purpose=TOTP_KEY_PURPOSE)


WEBHOOK_SECRET_PURPOSE = "imagegen webhook secrets"  # noqa: S105 - a key-derivation label, not a secret


class WebhookSecret(models.Model):
    """The key a user's batch webhooks are signed with (Standard Webhooks `whsec_...`), stored encrypted."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="webhook_secret"
    )
    encrypted_secret = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook secret")
        verbose_name_plural = _("webhook secrets")

    def __str__(self) -> str:
        return f"webhook secret of user {self.user_id}"

    @property
    def key(self) -> bytes:
        return secret_decrypt(self.encrypted_secret, purpose=WEBHOOK_SECRET_PURPOSE)


class IdempotencyKey(models.Model):
    """One `Idempotency-Key` a user sent with an API POST, and the response to replay for it.

    The row is inserted before the request runs: the unique (user, key) constraint is the lock,
    so of concurrent duplicates exactly one runs and the others wait or are told to retry.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of the method, path and canonical body: the same key with another request is a conflict.
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Null while the first request is still running.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(default=b"", blank=True)
    # The batch the request made (recorded in the batch's transaction): named in replays, and,
    # while status_code is null, what a retry resumes (a gateway call that outlasted its wait or
    # whose process died), so that the retry waits for that batch instead of making another.
    made_batch = models.UUIDField(null=True, blank=True)
    # The request that made `made_batch` ended without an answer to keep (a 5xx, an exception): a
    # retry resumes at once instead of first waiting for an answer that will not come.
    unanswered = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_idempotency_key_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.key}"
