"""What each cacheable API response depends on, as weak ETags (see imagegen.conditional).

A finished batch changes only when it is retried (its status and counters change), renamed or
deleted, or one of its images is deleted; its images can still be starred, so a page of them is
tagged by its rows too. An active batch gets no tag (its queue estimates move every second). A
list page's tag covers its rows' changing fields, its estimates and its cursor, so a new, changed
or deleted batch or image changes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from generation.models import Batch, Generation
from generation.scheduler import QueueEstimate
from imagegen.conditional import weak_etag


def _batch_state(batch: Batch) -> tuple[Any, ...]:
    return (
        str(batch.pk), batch.name, batch.status, batch.priority, batch.total, batch.completed, batch.failed,
        batch.cancelled, batch.deleted, str(batch.cost_usd), batch.started_at, batch.finished_at, batch.paused_at,
        batch.cancel_requested_at,
    )  # fmt: skip


def finished_batch_etag(batch: Batch, *variant: Any) -> str | None:
    """The tag of a finished batch (or of one view of its images, `variant` naming it); None while active."""
    if batch.is_active:
        return None
    return weak_etag("batch", batch.owner_id, _batch_state(batch), variant)


def batch_page_etag(
    owner_id: int | None, batches: Iterable[Batch], estimates: dict[Any, QueueEstimate], *variant: Any
) -> str:
    rows = [(*_batch_state(batch), estimates.get(batch.pk)) for batch in batches]
    return weak_etag("batches", owner_id, rows, variant)


# What batch_generations_etag reads of each image: a page read with only these can be tagged.
PAGE_KEY_FIELDS = ("position", "favourite")


def batch_generations_etag(batch: Batch, generations: Iterable[Any], *variant: Any) -> str | None:
    """The tag of a page of a finished batch's images (rows with their PAGE_KEY_FIELDS); None while active.

    Its images change only with the batch (a retry makes it active again, a deletion moves its
    counters), except for their stars: the page's starred images are part of the tag. Positions
    name the images: they are unique in a batch and never change.
    """
    if batch.is_active:
        return None
    rows = list(generations)
    starred = [g.position for g in rows if g.favourite]
    ends = [g.position for g in rows[:1] + rows[-1:]]
    return weak_etag("batch-generations", batch.owner_id, _batch_state(batch), ends, starred, variant)


def generation_page_etag(owner_id: int | None, generations: Iterable[Generation], *variant: Any) -> str:
    return weak_etag("generations", owner_id, _image_states(generations), variant)


def _image_states(generations: Iterable[Generation]) -> list[tuple[Any, ...]]:
    return [
        (
            str(g.pk), g.status, g.attempts, g.not_before, g.finished_at, g.provider, g.model, str(g.cost_usd),
            g.image.name, g.thumbnail.name, g.error_code, g.cached, g.batch_id, g.favourite,
        )
        for g in generations
    ]  # fmt: skip
