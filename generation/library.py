"""The owner's writes to their library: favourites, named collections and deleting images and batches.

Deleting keeps the rows (marked `deleted_at`) so that usage rollups, daily quotas and the batch's
counters of what was made stay true; the stored files go, after the transaction commits.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from generation import lifecycle, storage
from generation.models import (
    FINISHED_GENERATION_STATUSES,
    Batch,
    Collection,
    CollectionItem,
    ComparisonArm,
    Generation,
)
from generation.renditions import renditions_detach
from imagegen.errors import Conflict, NotFound, ValidationFailed
from imagegen.pagination import KeysetPage, keyset_page

logger = logging.getLogger(__name__)

MAX_SELECTION = 500
MAX_COLLECTION_NAME = 100
COLLECTION_ORDER = ("-created_at", "-id")  # the (owner, newest) index, ending in a unique column


class ItemsChange(Protocol):
    def __call__(self, *, collection: Collection, generations: list[Generation]) -> int: ...


# --- reads ---------------------------------------------------------------------------------------


def collection_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Collection]:
    """The user's collections, newest first, each with `size` (its number of images)."""
    return Collection.objects.filter(owner_id=user.pk).annotate(size=Count("items")).order_by(*COLLECTION_ORDER)


def collection_page(*, user: AbstractBaseUser | AnonymousUser, cursor: str = "", size: int) -> KeysetPage[Collection]:
    """One page of the user's collections, newest first, with how many they have (a count on their index)."""
    mine = Collection.objects.filter(owner_id=user.pk)
    return keyset_page(
        collection_list(user=user), ordering=COLLECTION_ORDER, cursor=cursor, size=size, total=mine.count
    )


def collection_get(*, user: AbstractBaseUser | AnonymousUser, collection_id: uuid.UUID | str) -> Collection:
    """The user's own collection; another user's, or an unknown id, is the same 404."""
    try:
        return collection_list(user=user).get(pk=collection_id)
    except (Collection.DoesNotExist, ValidationError, ValueError):
        raise NotFound(_("No such collection.")) from None


def collection_generations(*, collection: Collection) -> QuerySet[Generation]:
    """The collection's listed images, in the order they were added (what its ZIP holds)."""
    return (
        Generation.objects.listed()
        .filter(collection_items__collection=collection)
        .order_by("collection_items__added_at", "id")
    )


def owned_generations(*, user: AbstractBaseUser | AnonymousUser, ids: Iterable[object]) -> list[Generation]:
    """The user's listed images with these ids, all of them or a 404 naming the ones that are not."""
    wanted = _uuids(ids)
    found = list(Generation.objects.listed().filter(id__in=wanted, batch__owner_id=user.pk))
    missing = sorted(str(i) for i in set(wanted) - {g.pk for g in found})
    if missing:
        raise NotFound(_("No such image."), details={"ids": missing})
    return found


def _uuids(ids: Iterable[object]) -> list[uuid.UUID]:
    values = list(ids)
    if not values:
        raise ValidationFailed(_("Choose at least one image."), details={"ids": ["empty"]})
    if len(values) > MAX_SELECTION:
        message = _("At most %(max)d images at a time.") % {"max": MAX_SELECTION}
        raise ValidationFailed(message, details={"ids": ["too_many"]})
    try:
        return list(dict.fromkeys(uuid.UUID(str(value)) for value in values))
    except ValueError:
        raise ValidationFailed(_("Image ids must be UUIDs."), details={"ids": ["invalid"]}) from None


# --- favourites ----------------------------------------------------------------------------------


def generation_favourite_set(*, generation: Generation, favourite: bool) -> Generation:
    """Star or unstar one image (a single-column UPDATE: never overwrites the lifecycle's columns)."""
    Generation.objects.listed().filter(pk=generation.pk).update(favourite=favourite)
    generation.favourite = favourite
    return generation


# --- collections ---------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = " ".join(name.replace("\x00", "").split())
    if not name:
        raise ValidationFailed(_("Give the collection a name."), details={"name": ["required"]})
    if len(name) > MAX_COLLECTION_NAME:
        message = _("A name has at most %(max)d characters.") % {"max": MAX_COLLECTION_NAME}
        raise ValidationFailed(message, details={"name": ["too_long"]})
    return name


def _name_taken() -> Conflict:
    return Conflict(_("You already have a collection with this name."), code="collection_exists")


def collection_create(*, owner: AbstractBaseUser, name: str) -> Collection:
    try:
        with transaction.atomic():
            collection = Collection.objects.create(owner_id=owner.pk, name=_check_name(name))
    except IntegrityError:
        raise _name_taken() from None
    collection.size = 0  # type: ignore[attr-defined]
    return collection


def collection_rename(*, collection: Collection, name: str) -> Collection:
    collection.name = _check_name(name)
    try:
        with transaction.atomic():
            collection.save(update_fields=["name"])
    except IntegrityError:
        raise _name_taken() from None
    return collection


def collection_delete(*, collection: Collection) -> None:
    """Remove the collection; its images stay in the library."""
    collection.delete()


def collection_items_add(*, collection: Collection, generations: list[Generation]) -> int:
    """Put images in the collection (those already in it are skipped); returns how many were added."""
    before = collection.items.count()
    CollectionItem.objects.bulk_create(
        [CollectionItem(collection=collection, generation=g) for g in generations], ignore_conflicts=True
    )
    return collection.items.count() - before


def collection_items_remove(*, collection: Collection, generations: list[Generation]) -> int:
    removed, _by_model = collection.items.filter(generation__in=generations).delete()
    return removed


# --- deleting ------------------------------------------------------------------------------------


def generations_delete(*, generations: list[Generation]) -> int:
    """Delete finished images (any batch of the owner); an image still being made is a 409."""
    unfinished = sorted(str(g.pk) for g in generations if g.status not in FINISHED_GENERATION_STATUSES)
    if unfinished:
        raise Conflict(
            _("An image that is still waiting or being made cannot be deleted; cancel its batch first."),
            code="generation_unfinished",
            details={"ids": unfinished},
        )
    by_batch: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for generation in generations:
        by_batch[generation.batch_id].append(generation.pk)
    files: list[str] = []
    with transaction.atomic():
        for batch_id, ids in by_batch.items():
            files += renditions_detach(generation_ids=ids)
            files += lifecycle.generations_delete(batch_id=batch_id, generation_ids=ids)
        transaction.on_commit(lambda: remove_files(files))
    return len(generations)


def batch_delete(*, batch: Batch) -> None:
    """Delete an ended batch and its images; a queued, running or paused one must be cancelled first."""
    if batch.is_active:
        raise Conflict(_("This batch is still running; cancel it before deleting it."), code="batch_active")
    if ComparisonArm.objects.filter(batch=batch).exists():
        # The comparison's side-by-side rows and votes need every arm's batch.
        raise Conflict(_("This batch is one side of a comparison and stays with it."), code="batch_in_comparison")
    with transaction.atomic():
        files = renditions_detach(generation_ids=batch.generations.values_list("id", flat=True))
        files += lifecycle.batch_delete(batch=batch)
        transaction.on_commit(lambda: remove_files(files))


def remove_files(names: list[str]) -> None:
    """Remove stored files (local disk or object store); one that cannot be removed is logged, not fatal."""
    for name in names:
        try:
            storage.delete_files(name)
        except Exception:  # any backend's failure (OSError, botocore): the row is already deleted
            logger.warning("Could not remove %s of a deleted image", name, exc_info=True)
