"""Batch and generation reads, always scoped to the user who asks."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from generation.models import Batch, Generation
from imagegen.errors import NotFound


def batch_list(*, user: AbstractBaseUser | AnonymousUser, search: str = "", status: str = "") -> QuerySet[Batch]:
    batches = Batch.objects.filter(owner_id=user.pk)
    search = search.replace("\x00", "")  # no text contains NUL; PostgreSQL refuses it in a query
    if search:
        matching = Generation.objects.filter(prompt__icontains=search).values("batch_id")
        batches = batches.filter(Q(name__icontains=search) | Q(id__in=matching))
    if status:
        batches = batches.filter(status=status)
    return batches.annotate(cost_total=Sum("generations__cost_usd")).order_by("-created_at")


def batch_get(*, user: AbstractBaseUser | AnonymousUser, batch_id: uuid.UUID | str) -> Batch:
    """The user's own batch; another user's, or an unknown id, is the same 404."""
    try:
        return Batch.objects.annotate(cost_total=Sum("generations__cost_usd")).get(pk=batch_id, owner_id=user.pk)
    except (Batch.DoesNotExist, ValidationError, ValueError):
        raise NotFound(_("No such batch.")) from None


def generation_list(*, batch: Batch, status: str = "") -> QuerySet[Generation]:
    generations = Generation.objects.filter(batch=batch).select_related("batch")
    return generations.filter(status=status) if status else generations


def generation_get(*, user: AbstractBaseUser | AnonymousUser, generation_id: uuid.UUID | str) -> Generation:
    try:
        return Generation.objects.select_related("batch").get(pk=generation_id, batch__owner_id=user.pk)
    except (Generation.DoesNotExist, ValidationError, ValueError):
        raise NotFound(_("No such image.")) from None


def batch_cost(*, batch: Batch) -> Decimal | None:
    """The batch's estimated cost so far: annotated by the selectors above, or summed here."""
    if hasattr(batch, "cost_total"):
        return batch.cost_total
    return Generation.objects.filter(batch=batch).aggregate(total=Sum("cost_usd"))["total"]


def usage_summary(*, user: AbstractBaseUser | AnonymousUser) -> dict[str, Any]:
    """What the user's images have cost, in total and per provider and model."""
    succeeded = Generation.objects.filter(batch__owner_id=user.pk, status="succeeded")
    rows = (
        succeeded.values("provider", "model")
        .annotate(images=Count("id"), cost_usd=Sum("cost_usd"))
        .order_by("provider", "model")
    )
    totals = succeeded.aggregate(images=Count("id"), cost_usd=Sum("cost_usd"))
    return {
        "images": totals["images"],
        "cost_usd": totals["cost_usd"] or Decimal("0"),
        "by_model": [{**row, "cost_usd": row["cost_usd"] or Decimal("0")} for row in rows],
    }
