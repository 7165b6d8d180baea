"""Batch and generation reads, always scoped to the user who asks."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from generation import stats
from generation.models import Batch, Generation
from generation.search import PromptMatches, query_terms
from imagegen.errors import NotFound
from imagegen.pagination import KeysetPage, keyset_page

# Orders that match an index exactly, ending in a unique column, so every page is a keyset range scan.
BATCH_ORDER = ("-created_at", "-id")
LIBRARY_ORDER = ("-batch__created_at", "-batch__id", "position")
BATCH_GENERATION_ORDER = ("position",)


def batch_list(*, user: AbstractBaseUser | AnonymousUser, search: str = "", status: str = "") -> QuerySet[Batch]:
    """The user's batches; `search` finds words or CJK text in the batch name or any of its prompts."""
    batches = Batch.objects.filter(owner_id=user.pk)
    terms = query_terms(search)
    if terms:
        named = Q()
        for term in terms:
            named &= Q(name__icontains="".join(term.tokens))
        prompted = Generation.objects.filter(PromptMatches(terms)).values("batch_id")
        batches = batches.filter(named | Q(id__in=prompted))
    if status:
        batches = batches.filter(status=status)
    return batches.order_by(*BATCH_ORDER)


def batch_page(
    *, user: AbstractBaseUser | AnonymousUser, search: str = "", status: str = "", cursor: str = "", size: int
) -> KeysetPage[Batch]:
    """One page of `batch_list`, with the number of batches that match (a count over the owner's index)."""
    batches = batch_list(user=user, search=search, status=status)
    return keyset_page(batches, ordering=BATCH_ORDER, cursor=cursor, size=size, total=batches.count)


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


def batch_generation_page(*, batch: Batch, status: str = "", cursor: str = "", size: int) -> KeysetPage[Generation]:
    """One page of a batch's images in order; the total comes from the batch's own counters."""
    total = (lambda: batch.total) if not status else None
    generations = generation_list(batch=batch, status=status)
    return keyset_page(generations, ordering=BATCH_GENERATION_ORDER, cursor=cursor, size=size, total=total)


def library_list(
    *,
    user: AbstractBaseUser | AnonymousUser,
    search: str = "",
    provider: str = "",
    model: str = "",
    status: str = "",
) -> QuerySet[Generation]:
    """Every image of the user across batches, newest batch first; `search` is full-text on prompts."""
    generations = Generation.objects.filter(batch__owner_id=user.pk).select_related("batch")
    terms = query_terms(search)
    if terms:
        generations = generations.filter(PromptMatches(terms))
    for field, value in (("provider", provider), ("model", model), ("status", status)):
        if value:
            generations = generations.filter(**{field: value})
    return generations.order_by(*LIBRARY_ORDER)


def library_page(
    *, user: AbstractBaseUser | AnonymousUser, cursor: str = "", size: int, **filters: str
) -> KeysetPage[Generation]:
    """One page of the library. No total: counting a whole history is what keyset pages avoid."""
    return keyset_page(library_list(user=user, **filters), ordering=LIBRARY_ORDER, cursor=cursor, size=size)


def usage_summary(*, user: AbstractBaseUser | AnonymousUser) -> dict[str, Any]:
    """What the user's images have cost, in total and per provider and model (from the usage rollups)."""
    made = [
        (provider, model, tally)
        for (provider, model), tally in sorted(stats.owner_totals(owner_id=int(user.pk or 0)).items())
        if tally.counts["succeeded"]
    ]
    return {
        "images": sum(tally.counts["succeeded"] for _p, _m, tally in made),
        "cost_usd": sum((tally.cost_usd for _p, _m, tally in made), Decimal("0")),
        "by_model": [
            {"provider": p, "model": m, "images": tally.counts["succeeded"], "cost_usd": tally.cost_usd}
            for p, m, tally in made
        ],
    }
