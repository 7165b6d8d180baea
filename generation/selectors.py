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
from generation.models import Batch, Generation, WebhookDelivery
from generation.search import PromptMatches, query_terms
from imagegen.errors import NotFound, ValidationFailed
from imagegen.pagination import KeysetPage, after, decode_cursor, encode_cursor, invalid_cursor, keyset_page

# Orders that match an index exactly, ending in a unique column, so every page is a keyset range scan.
BATCH_ORDER = ("-created_at", "-id")
LIBRARY_ORDER = ("-batch__created_at", "-batch__id", "position")
BATCH_GENERATION_ORDER = ("position",)


def batch_list(*, user: AbstractBaseUser | AnonymousUser, search: str = "", status: str = "") -> QuerySet[Batch]:
    """The user's batches; `search` finds words or CJK text in the batch name or any of its prompts."""
    batches = Batch.objects.filter(owner_id=user.pk)
    search = search.replace("\x00", "")  # no text contains NUL; PostgreSQL refuses it in a query
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
    """The batch's images; each row's `batch` is the one given (no join: every row would repeat it)."""
    generations = Generation.objects.filter(batch=batch)
    return generations.filter(status=status) if status else generations


MAX_DOWNLOAD_SELECTION = 1000


def download_selection(*, user: AbstractBaseUser | AnonymousUser, ids: list[str]) -> QuerySet[Generation]:
    """The user's images among `ids`, in library order; one id that is not theirs is a 404 for all."""
    if not ids or len(ids) > MAX_DOWNLOAD_SELECTION:
        message = _("Select from 1 to %(max)d images to download.") % {"max": MAX_DOWNLOAD_SELECTION}
        raise ValidationFailed(message, code="invalid_selection", details={"ids": [message]})
    try:
        wanted = {uuid.UUID(str(value)) for value in ids}
    except ValueError:
        raise NotFound(_("No such image.")) from None
    generations = Generation.objects.filter(batch__owner_id=user.pk, pk__in=wanted)
    if generations.count() != len(wanted):
        raise NotFound(_("No such image.")) from None
    return generations.select_related("batch").order_by(*LIBRARY_ORDER)


def generation_get(*, user: AbstractBaseUser | AnonymousUser, generation_id: uuid.UUID | str) -> Generation:
    try:
        return Generation.objects.select_related("batch").get(pk=generation_id, batch__owner_id=user.pk)
    except (Generation.DoesNotExist, ValidationError, ValueError):
        raise NotFound(_("No such image.")) from None


def batch_generation_page(
    *, batch: Batch, status: str = "", cursor: str = "", size: int, page_number: int = 1
) -> KeysetPage[Generation]:
    """One page of a batch's images in order; the total comes from the batch's own counters.

    Positions run 0, 1, 2... without gaps, so page n (the portal's numbered pages) starts at
    position (n - 1) × size: an index range, like a cursor.
    """
    total = (lambda: batch.total) if not status else None
    generations = generation_list(batch=batch, status=status)
    if page_number > 1 and not cursor:
        generations = generations.filter(position__gte=(page_number - 1) * size)
    page = keyset_page(generations, ordering=BATCH_GENERATION_ORDER, cursor=cursor, size=size, total=total)
    for generation in page.items:
        generation.batch = batch
    return page


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
    *, user: AbstractBaseUser | AnonymousUser, cursor: str = "", size: int, search: str = "", **filters: str
) -> KeysetPage[Generation]:
    """One page of the library. No total: counting a whole history is what keyset pages avoid.

    A search reads its matches from the full-text index and orders them. Without one, the page
    is read a few batches at a time, newest first along the owner's batch index, so no query
    ever sorts more than those batches' images, however long the history.
    """
    if query_terms(search):
        generations = library_list(user=user, search=search, **filters)
        return keyset_page(generations, ordering=LIBRARY_ORDER, cursor=cursor, size=size)
    # The chunks name the owner's batches themselves: no owner condition on the images, which
    # would invite the database to walk every batch of the owner instead of the chunk's.
    generations = Generation.objects.filter(**{k: v for k, v in filters.items() if v}).select_related("batch")
    try:
        found = _library_chunks(generations, user=user, cursor=cursor, wanted=size + 1)
    except (ValueError, TypeError, ValidationError):  # a cursor whose values do not fit the columns
        invalid_cursor()
    more = len(found) > size
    items = found[:size]
    return KeysetPage(items=items, next_cursor=encode_cursor(items[-1], LIBRARY_ORDER) if more else None)


def _library_chunks(
    generations: QuerySet[Generation], *, user: AbstractBaseUser | AnonymousUser, cursor: str, wanted: int
) -> list[Generation]:
    """Up to `wanted` images after `cursor`, reading 2, 8, 32, then 128 batches at a time."""
    batches = Batch.objects.filter(owner_id=user.pk).order_by(*BATCH_ORDER)
    if cursor:
        created, batch_id, position = decode_cursor(cursor, len(LIBRARY_ORDER))
        batches = batches.filter(Q(created_at=created, id=batch_id) | after(BATCH_ORDER, [created, batch_id]))
        # Within the cursor's own batch, only the images after it; later batches are read whole.
        generations = generations.exclude(batch_id=batch_id, position__lte=position)
    found: list[Generation] = []
    chunk = 2
    while len(found) < wanted:
        ids = list(batches.values_list("created_at", "id")[:chunk])
        if not ids:
            break
        in_chunk = generations.filter(batch_id__in=[batch_id for _created, batch_id in ids])
        found += in_chunk.order_by(*LIBRARY_ORDER)[: wanted - len(found)]
        batches = batches.filter(after(BATCH_ORDER, list(ids[-1])))
        chunk = min(chunk * 4, 128)
    return found


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


def webhook_delivery_list(*, batch: Batch) -> QuerySet[WebhookDelivery]:
    """The webhook deliveries of a batch the caller already holds (read through `batch_get`), newest first."""
    return WebhookDelivery.objects.filter(batch=batch).order_by("-created_at", "-id")


def webhook_delivery_get(*, batch: Batch, delivery_id: uuid.UUID | str) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.filter(batch=batch, pk=delivery_id).first()
    if delivery is None:
        raise NotFound(_("No such webhook delivery."))
    return delivery
