"""Batch and generation reads, always scoped to the user who asks."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from generation import stats
from generation.models import Batch, Generation, GenerationStatus, WebhookDelivery
from generation.search import BatchPromptMatches, PromptMatches, Term, many_matches, query_terms
from imagegen.errors import NotFound, ValidationFailed
from imagegen.pagination import KeysetPage, after, decode_cursor, encode_cursor, invalid_cursor, keyset_page

# Orders that match an index exactly, ending in a unique column, so every page is a keyset range scan.
BATCH_ORDER = ("-created_at", "-id")
LIBRARY_ORDER = ("-batch__created_at", "-batch__id", "position")
BATCH_GENERATION_ORDER = ("position",)
# The fewest batches read at a time (with their image counts) to fill a library page; a read asks
# for at least as many batches as images are still wanted. Every row read costs its conversions
# (and, under load, a wait for the interpreter): 64 made the library 12× /health/live at 20
# clients where 16 made it 8–10×.
LIBRARY_BATCH_WINDOW = 16
LIBRARY_MAX_CHUNK = 1024  # the most batches one round of a library page asks about
LIBRARY_MAX_IMAGES = 50_000  # the most images one round looks through (a filter or search that finds few)
# A library search with this many matches (anybody's) walks the batches instead of sorting them all.
COMMON_SEARCH_MATCHES = 2000
STRICT_FILTERS = ("size", "since", "until", "favourite", "collection")
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def batch_list(*, user: AbstractBaseUser | AnonymousUser, search: str = "", status: str = "") -> QuerySet[Batch]:
    """The user's batches; `search` finds words or CJK text in the batch name or any of its prompts."""
    batches = Batch.objects.filter(owner_id=user.pk, deleted_at__isnull=True)
    terms = query_terms(search)
    if terms:
        prompted = Generation.objects.listed().filter(PromptMatches(terms)).values("batch_id")
        batches = batches.filter(_named(terms) | Q(id__in=prompted))
    if status:
        batches = batches.filter(status=status)
    return batches.order_by(*BATCH_ORDER)


def _named(terms: list[Term]) -> Q:
    named = Q()
    for term in terms:
        named &= Q(name__icontains="".join(term.tokens))
    return named


def batch_page(
    *, user: AbstractBaseUser | AnonymousUser, search: str = "", status: str = "", cursor: str = "", size: int
) -> KeysetPage[Batch]:
    """One page of `batch_list`, with the number of batches that match (a count over the owner's index).

    A search for a common term (COMMON_SEARCH_MATCHES or more matches) has no count, which would
    cost every match again; on SQLite it walks the owner's batches newest first, asking each
    whether one of its images matches.
    """
    terms = query_terms(search)
    common = bool(terms) and many_matches(terms, COMMON_SEARCH_MATCHES)
    batches: QuerySet[Batch]
    if common and connection.vendor == "sqlite":  # PostgreSQL would check every image of each batch by hand
        batches = Batch.objects.filter(_named(terms) | BatchPromptMatches(terms), owner_id=user.pk, deleted_at=None)
        batches = batches.filter(status=status) if status else batches
    else:
        batches = batch_list(user=user, search=search, status=status)
    return keyset_page(batches, ordering=BATCH_ORDER, cursor=cursor, size=size, total=None if common else batches.count)


def batch_get(*, user: AbstractBaseUser | AnonymousUser, batch_id: uuid.UUID | str) -> Batch:
    """The user's own batch; another user's, or an unknown id, is the same 404."""
    try:
        return Batch.objects.get(pk=batch_id, owner_id=user.pk, deleted_at__isnull=True)
    except (Batch.DoesNotExist, ValidationError, ValueError):
        raise NotFound(_("No such batch.")) from None


def generation_list(*, batch: Batch, status: str = "") -> QuerySet[Generation]:
    """The batch's listed images; each row's `batch` is the one given (no join: every row would repeat it)."""
    generations = Generation.objects.listed().filter(batch=batch)
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
        return Generation.objects.listed().select_related("batch").get(pk=generation_id, batch__owner_id=user.pk)
    except (Generation.DoesNotExist, ValidationError, ValueError):
        raise NotFound(_("No such image.")) from None


def batch_generation_page(
    *, batch: Batch, status: str = "", cursor: str = "", size: int, page_number: int = 1
) -> KeysetPage[Generation]:
    """One page of a batch's images in order; the total comes from the batch's own counters.

    Positions run 0, 1, 2... without gaps, so page n (the portal's numbered pages) starts at
    position (n - 1) × size: an index range, like a cursor. (Once the owner deletes images, the
    pages after them hold fewer: the gaps stay where the images were.)
    """
    total = (lambda: batch.listed) if not status else None
    rows = _batch_page_rows(batch, status, cursor, size, page_number)
    page = keyset_page(rows, ordering=BATCH_GENERATION_ORDER, cursor=cursor, size=size, total=total)
    for generation in page.items:
        generation.batch = batch
    return page


def batch_generation_keys(
    *, fields: Sequence[str], batch: Batch, status: str = "", cursor: str = "", size: int, page_number: int = 1
) -> KeysetPage[Any]:
    """The page batch_generation_page reads, as named rows of only `fields` (and the order's columns):
    enough to name the page (its ETag) before reading it whole."""
    rows = _batch_page_rows(batch, status, cursor, size, page_number)
    named = rows.values_list(*dict.fromkeys([*fields, *BATCH_GENERATION_ORDER]), named=True)
    return keyset_page(named, ordering=BATCH_GENERATION_ORDER, cursor=cursor, size=size)


def _batch_page_rows(batch: Batch, status: str, cursor: str, size: int, page_number: int) -> QuerySet[Generation]:
    generations = generation_list(batch=batch, status=status)
    if page_number > 1 and not cursor:
        generations = generations.filter(position__gte=(page_number - 1) * size)
    return generations


@dataclass(frozen=True)
class LibraryFilters:
    """What the library is narrowed to; every field empty means all of the user's images."""

    search: str = ""
    provider: str = ""
    model: str = ""
    status: str = ""
    width: int | None = None
    height: int | None = None
    since: datetime | None = None  # batch created at or after
    until: datetime | None = None  # batch created before
    favourite: bool = False
    collection_id: uuid.UUID | None = None

    @property
    def small_set(self) -> bool:
        """Filters that pick few images, read whole and ordered (instead of a few batches at a time)."""
        return bool(query_terms(self.search)) or self.favourite or self.collection_id is not None

    def image_conditions(self) -> Q:
        """The conditions on the images themselves (not their batch, not the owner)."""
        condition = Q(deleted_at__isnull=True)
        for field in ("provider", "model", "status"):
            if getattr(self, field):
                condition &= Q(**{field: getattr(self, field)})
        if self.width is not None:
            condition &= Q(width=self.width, height=self.height)
        if self.favourite:
            condition &= Q(favourite=True)
        if self.collection_id is not None:
            condition &= Q(collection_items__collection_id=self.collection_id)
        return condition

    def batch_conditions(self, prefix: str = "") -> Q:
        condition = Q(**{f"{prefix}deleted_at__isnull": True})
        if self.since is not None:
            condition &= Q(**{f"{prefix}created_at__gte": self.since})
        if self.until is not None:
            condition &= Q(**{f"{prefix}created_at__lt": self.until})
        return condition


def library_filters(query: Mapping[str, str]) -> LibraryFilters:
    """The library's filters from a query string (API or portal); bad values are a 400 naming the field."""

    def get(*names: str) -> str:
        return next((str(query.get(name, "")).strip() for name in names if str(query.get(name, "")).strip()), "")

    for name in STRICT_FILTERS:  # given, these must say something (the portal leaves out empty fields)
        if name in query and not str(query[name]).strip():
            raise _bad(name, _("This filter is empty; leave it out to not filter."))

    width = height = None
    size = get("size")
    if size:
        match = re.fullmatch(r"(\d{1,5})[x×X](\d{1,5})", size)
        if not match:
            raise _bad("size", _("Give the size as width×height, for example 1024x1024."))
        width, height = int(match[1]), int(match[2])
    collection = get("collection")
    if collection and not UUID_TEXT.fullmatch(collection):
        raise _bad("collection", _("Not a collection id."))
    favourite = get("favourite", "favorite")
    if favourite not in ("", "true", "false"):
        raise _bad("favourite", _("Use true or false."))
    return LibraryFilters(
        search=get("search", "q"),
        provider=get("provider"),
        model=get("model"),
        status=get("status"),
        width=width,
        height=height,
        since=_moment(get("since", "created_after"), "since"),
        until=_moment(get("until", "created_before"), "until", end_of_day=True),
        favourite=favourite == "true",
        collection_id=uuid.UUID(collection) if collection else None,
    )


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details={field: [message]})


def _moment(raw: str, field: str, *, end_of_day: bool = False) -> datetime | None:
    """A date (the whole day, in the site's time zone) or an ISO 8601 date-time."""
    if not raw:
        return None
    raw = raw.upper()  # RFC 3339 allows a lower-case "t" and "z"
    try:
        day = parse_date(raw)
        moment = parse_datetime(raw) if day is None else None
    except ValueError:
        day = moment = None
    if day is not None:
        start = timezone.make_aware(datetime.combine(day, time.min))
        return start + timedelta(days=1) if end_of_day else start
    if moment is None:
        raise _bad(field, _("Give a date (2025-01-31) or a date and time (2025-01-31T12:00:00Z)."))
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


# Of a library row's batch, only what its cursor reads (LIBRARY_ORDER): the rest of the batch row
# (its JSON parameters, its timestamps) would be read and decoded for every image on the page.
_BATCH_ORDER_COLUMNS = {name.lstrip("-").removeprefix("batch__") for name in LIBRARY_ORDER if "batch__" in name}
_BATCH_BEYOND_ORDER = [f"batch__{f.name}" for f in Batch._meta.concrete_fields if f.name not in _BATCH_ORDER_COLUMNS]


def _with_batch_order(generations: QuerySet[Generation]) -> QuerySet[Generation]:
    return generations.select_related("batch").defer(*_BATCH_BEYOND_ORDER)


def library_list(
    *, user: AbstractBaseUser | AnonymousUser, filters: LibraryFilters | None = None, **fields: Any
) -> QuerySet[Generation]:
    """Every listed image of the user across batches, newest batch first; `search` is full-text on prompts."""
    filters = filters or LibraryFilters(**fields)
    generations = _with_batch_order(Generation.objects.filter(batch__owner_id=user.pk))
    terms = query_terms(filters.search)
    if terms:
        generations = generations.filter(PromptMatches(terms))
    generations = generations.filter(filters.image_conditions(), filters.batch_conditions("batch__"))
    return generations.order_by(*LIBRARY_ORDER)


def library_page(
    *,
    user: AbstractBaseUser | AnonymousUser,
    cursor: str = "",
    size: int,
    filters: LibraryFilters | None = None,
    **fields: Any,
) -> KeysetPage[Generation]:
    """One page of the library. No total: counting a whole history is what keyset pages avoid.

    A search for a rare term, the favourites or a collection are read from their own index and
    ordered. Otherwise the page is read a few batches at a time, newest first along the owner's
    batch index, so no query ever sorts more than those batches' images, however long the history;
    a common term (SQLite: COMMON_SEARCH_MATCHES or more matches) is looked up within each chunk.
    """
    filters = filters or LibraryFilters(**fields)
    terms = query_terms(filters.search)
    common = bool(terms) and filters.favourite is False and filters.collection_id is None
    common = common and connection.vendor == "sqlite" and many_matches(terms, COMMON_SEARCH_MATCHES)
    if filters.small_set and not common:
        generations = library_list(user=user, filters=filters)
        return keyset_page(generations, ordering=LIBRARY_ORDER, cursor=cursor, size=size)
    # The chunks name the owner's batches themselves: no owner condition on the images, which
    # would invite the database to walk every batch of the owner instead of the chunk's.
    generations = _with_batch_order(Generation.objects.filter(filters.image_conditions()))
    batches = Batch.objects.filter(filters.batch_conditions(), owner_id=user.pk)
    try:
        found = _library_chunks(generations, batches, cursor=cursor, wanted=size + 1, terms=terms)
    except (ValueError, TypeError, ValidationError):  # a cursor whose values do not fit the columns
        invalid_cursor()
    more = len(found) > size
    items = found[:size]
    return KeysetPage(items=items, next_cursor=encode_cursor(items[-1], LIBRARY_ORDER) if more else None)


def _library_chunks(
    generations: QuerySet[Generation],
    batches: QuerySet[Batch],
    *,
    cursor: str,
    wanted: int,
    terms: list[Term] | None = None,
) -> list[Generation]:
    """Up to `wanted` images after `cursor` (matching `terms`), reading as few batches as their
    image counts allow.

    The owner's batches come newest first, a window at a time, with how many images each still
    lists; each round asks for the images of just enough batches to fill the page, then of four
    times as many images each round (up to LIBRARY_MAX_IMAGES, or LIBRARY_MAX_CHUNK batches) for
    filters and searches that leave few images per batch.
    """
    batches = batches.order_by(*BATCH_ORDER)
    if cursor:
        created, batch_id, position = decode_cursor(cursor, len(LIBRARY_ORDER))
        batches = batches.filter(Q(created_at=created, id=batch_id) | after(BATCH_ORDER, [created, batch_id]))
        # Within the cursor's own batch, only the images after it; later batches are read whole.
        generations = generations.exclude(batch_id=batch_id, position__lte=position)
    window = batches.values_list("created_at", "id", F("total") - F("deleted"))
    found: list[Generation] = []
    pending: list[tuple[Any, uuid.UUID, int]] = []
    exhausted, budget = False, wanted
    while len(found) < wanted:
        goal = max(wanted - len(found), budget)  # images to look through this round
        short = goal - sum(n for *_, n in pending)
        while not exhausted and len(pending) < LIBRARY_MAX_CHUNK and short > 0:
            read = min(max(LIBRARY_BATCH_WINDOW, short), LIBRARY_MAX_CHUNK)  # a batch lists 1 image or more
            more = list(window[:read])
            exhausted = len(more) < read
            if more:
                window = window.filter(after(BATCH_ORDER, list(more[-1][:2])))
            pending += more
            short -= sum(n for *_, n in more)
        if not pending:
            break
        take, listed = 0, 0
        while take < min(len(pending), LIBRARY_MAX_CHUNK) and (take == 0 or listed < goal):
            listed += pending[take][2]
            take += 1
        chunk, pending = pending[:take], pending[take:]
        ids = [batch_id for _created, batch_id, _listed in chunk]
        in_chunk = generations.filter(batch_id__in=ids)
        if terms:
            in_chunk = in_chunk.filter(PromptMatches(terms, within_batches=ids))
        found += in_chunk.order_by(*LIBRARY_ORDER)[: wanted - len(found)]
        budget = min(budget * 4, LIBRARY_MAX_IMAGES)
    return found


def batch_thumbnail_ids(*, batches: Iterable[Batch], per_batch: int = 4) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The ids of each batch's first few made images (for the history rows): one query for the whole page.

    Only the first `per_batch` × 4 positions are looked at, along the (batch, position) index, so a
    page of big batches reads a few dozen (batch, image) id pairs, not every image of every batch on it.
    """
    ids = [batch.pk for batch in batches]
    strips: dict[uuid.UUID, list[uuid.UUID]] = {batch_id: [] for batch_id in ids}
    if not ids:
        return strips
    made = (
        Generation.objects.listed()
        .filter(batch_id__in=ids, status=GenerationStatus.SUCCEEDED, position__lt=per_batch * 4)
        .exclude(thumbnail="")
        .order_by("batch_id", "position")
        .values_list("batch_id", "id")
    )
    for batch_id, generation_id in made:
        if len(strips[batch_id]) < per_batch:
            strips[batch_id].append(generation_id)
    return strips


def usage_summary(*, user: AbstractBaseUser | AnonymousUser) -> dict[str, Any]:
    """What the user's images have cost, in total and per provider and model (from the usage rollups)."""
    made = [
        (key, figures) for key, figures in sorted(stats.owner_usage(owner_id=int(user.pk or 0)).items()) if figures[0]
    ]
    return {
        "images": sum(images for _key, (images, _cost) in made),
        "cost_usd": sum((cost for _key, (_images, cost) in made), Decimal("0")),
        "by_model": [
            {"provider": provider, "model": model, "images": images, "cost_usd": cost}
            for (provider, model), (images, cost) in made
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
