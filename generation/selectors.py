"""Batch and generation reads, always scoped to the user who asks."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from generation.models import Batch, Generation
from imagegen.errors import NotFound


def batch_list(*, user: AbstractBaseUser | AnonymousUser, search: str = "", status: str = "") -> QuerySet[Batch]:
    batches = Batch.objects.filter(owner_id=user.pk)
    if search:
        matching = Generation.objects.filter(prompt__icontains=search).values("batch_id")
        batches = batches.filter(Q(name__icontains=search) | Q(id__in=matching))
    if status:
        batches = batches.filter(status=status)
    return batches.order_by("-created_at")


def batch_get(*, user: AbstractBaseUser | AnonymousUser, batch_id: uuid.UUID | str) -> Batch:
    """The user's own batch; another user's, or an unknown id, is the same 404."""
    try:
        return Batch.objects.get(pk=batch_id, owner_id=user.pk)
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
