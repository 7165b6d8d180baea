"""Per-user quotas (images_per_day, images_per_batch, active_batches) and their atomic reservation."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import QuotaCharge, UserQuota
from imagegen.errors import TooManyRequests


@dataclass(frozen=True)
class QuotaLimits:
    images_per_day: int
    images_per_batch: int
    active_batches: int


@dataclass(frozen=True)
class QuotaUsage:
    limits: QuotaLimits
    images_today: int
    active_batches: int
    resets_at: datetime

    @property
    def images_remaining(self) -> int:
        return max(0, self.limits.images_per_day - self.images_today)

    @property
    def active_batches_remaining(self) -> int:
        return max(0, self.limits.active_batches - self.active_batches)

    def as_dict(self) -> dict[str, Any]:
        return {
            "images_per_day": {
                "limit": self.limits.images_per_day,
                "used": self.images_today,
                "remaining": self.images_remaining,
                "resets_at": self.resets_at.isoformat(),
            },
            "images_per_batch": {"limit": self.limits.images_per_batch},
            "active_batches": {
                "limit": self.limits.active_batches,
                "used": self.active_batches,
                "remaining": self.active_batches_remaining,
            },
        }


def quota_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The current quota day: from local midnight (TIME_ZONE) to the next one."""
    local = timezone.localtime(now or timezone.now())
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = timezone.make_aware(datetime.combine(start.date() + timedelta(days=1), datetime.min.time()))
    return start, end


def quota_limits(*, user: AbstractBaseUser | AnonymousUser) -> QuotaLimits:
    """The user's limits: their overrides where set, the defaults from the environment elsewhere."""
    override = UserQuota.objects.filter(user_id=int(user.pk or 0)).first()

    def pick(field: str, default: int) -> int:
        value = getattr(override, field, None)
        return default if value is None else int(value)

    return QuotaLimits(
        images_per_day=pick("daily_images", settings.DEFAULT_DAILY_IMAGE_QUOTA),
        images_per_batch=pick("max_images_per_batch", settings.DEFAULT_MAX_IMAGES_PER_BATCH),
        active_batches=pick("max_active_batches", settings.DEFAULT_MAX_ACTIVE_BATCHES),
    )


def quota_usage(*, user: AbstractBaseUser | AnonymousUser, now: datetime | None = None) -> QuotaUsage:
    """What the user has spent today: images created today that have not failed or been cancelled
    (those are refunded), plus every image of an earlier day queued again today (QuotaCharge)."""
    from generation.models import Batch, BatchStatus

    start, end = quota_window(now)
    # From the counters kept on today's batches (their images are created with them), not a recount.
    today = Batch.objects.filter(owner_id=user.pk, created_at__gte=start)
    spent = today.aggregate(n=Sum(F("total") - F("failed") - F("cancelled")))["n"] or 0
    charged = QuotaCharge.objects.filter(user_id=int(user.pk or 0), charged_at__gte=start).aggregate(n=Sum("images"))[
        "n"
    ]
    active = Batch.objects.filter(owner_id=user.pk, status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING])
    return QuotaUsage(
        limits=quota_limits(user=user),
        images_today=spent + (charged or 0),
        active_batches=active.count(),
        resets_at=end,
    )


def quota_reserve(
    *, user: AbstractBaseUser, images: int, new_batch: bool = True, check_batch_size: bool = True
) -> QuotaUsage:
    """Check that `images` more images (and one more active batch) fit the user's quotas.

    Call it inside the transaction that then writes the images: it locks the user's quota row,
    so concurrent submissions by one user run one after another and none can overspend.
    Raises TooManyRequests with code `quota_exceeded`.
    """
    with transaction.atomic():
        UserQuota.objects.bulk_create([UserQuota(user_id=user.pk)], ignore_conflicts=True)
        UserQuota.objects.select_for_update().get(user_id=user.pk)
        usage = quota_usage(user=user)
        if check_batch_size:
            _check_batch_size(usage, images)
        if new_batch:
            _check_active_batches(usage)
        _check_daily_images(usage, images)
    return usage


def quota_reserve_retry(*, user: AbstractBaseUser, generation_ids: Collection[Any]) -> QuotaUsage:
    """Check and charge a retry of these failed or cancelled generations against today's quota.

    Every retried image must fit in what is left of today's images_per_day. Images created today
    then count again by their own rows once they are pending; images created on an earlier day are
    charged to today in QuotaCharge (and stay charged if they fail again: the attempt was made).
    Call it inside the transaction that re-queues the generations, before their status changes;
    it locks the user's quota row like quota_reserve. Raises TooManyRequests `quota_exceeded`.
    """
    from generation.models import Generation

    images = len(generation_ids)
    with transaction.atomic():
        usage = quota_reserve(user=user, images=images, new_batch=False, check_batch_size=False)
        start, _end = quota_window()
        earlier = Generation.objects.filter(id__in=list(generation_ids), created_at__lt=start).count()
        if earlier:
            QuotaCharge.objects.create(user_id=user.pk, images=earlier, reason="retry")
    return usage


def _check_batch_size(usage: QuotaUsage, images: int) -> None:
    limit = usage.limits.images_per_batch
    if images > limit:
        message = _("This batch has %(images)d images; you may queue at most %(limit)d in one batch.") % {
            "images": images,
            "limit": limit,
        }
        details = {"quota": "images_per_batch", "limit": limit, "requested": images, "resets_at": None}
        raise TooManyRequests(message, code="quota_exceeded", details=details)


def _check_active_batches(usage: QuotaUsage) -> None:
    if usage.active_batches_remaining < 1:
        message = _(
            "You already have %(used)d batches queued or running (your limit is %(limit)d). "
            "Wait for one to finish or cancel one."
        ) % {"used": usage.active_batches, "limit": usage.limits.active_batches}
        details = {
            "quota": "active_batches",
            "limit": usage.limits.active_batches,
            "used": usage.active_batches,
            "remaining": 0,
            "resets_at": None,
        }
        raise TooManyRequests(message, code="quota_exceeded", details=details)


def _check_daily_images(usage: QuotaUsage, images: int) -> None:
    if images <= usage.images_remaining:
        return
    resets_at = timezone.localtime(usage.resets_at)
    message = _(
        "This batch needs %(images)d images but only %(remaining)d of your %(limit)d images for today remain. "
        "The quota resets at %(resets_at)s."
    ) % {
        "images": images,
        "remaining": usage.images_remaining,
        "limit": usage.limits.images_per_day,
        "resets_at": resets_at.strftime("%Y-%m-%d %H:%M %Z"),
    }
    details = {
        "quota": "images_per_day",
        "limit": usage.limits.images_per_day,
        "used": usage.images_today,
        "remaining": usage.images_remaining,
        "requested": images,
        "resets_at": resets_at.isoformat(),
    }
    retry_after = max(1, math.ceil((usage.resets_at - timezone.now()).total_seconds()))
    raise TooManyRequests(message, code="quota_exceeded", retry_after=retry_after, details=details)
