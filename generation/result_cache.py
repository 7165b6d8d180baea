"""The result cache: an image identical to one a user already has is copied, not paid for again.

"Identical" is the same owner, provider, model, prompt, negative prompt, size, explicit seed and
options; their hash is `Generation.cache_key`, set when the batch is written (blank when the
batch sets `cache: false` or leaves the seed random, which is never cached). Only images made on
the batch's own provider (no failover) are sources or hits.

Where it happens: the scheduler (`generation.scheduler`) sees that a pending image has a source
and claims it without a provider permit, so a hit neither waits for nor counts against the
provider's concurrency and rate limits; it also holds back an image whose twin is being rendered
right now, so a duplicate renders once and the second copies the first. The worker
(`generation.runner`) copies the files and records the success through the lifecycle with cost
0, `cached` set and the money saved. Files are copied, not shared, so deleting either image
never removes the other's file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import QuerySet

from generation.models import Generation, GenerationStatus
from generation.storage import StorageUnavailable, StoredImage


def cache_key(
    *,
    owner_id: int,
    provider: str,
    model: str,
    prompt: str,
    negative_prompt: str,
    width: int,
    height: int,
    seed: int,
    options: dict[str, Any],
) -> str:
    """A stable hash of everything that decides an image (and of its owner: caches are per user)."""
    identity = [owner_id, provider, model, prompt, negative_prompt, width, height, seed, options]
    encoded = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def sources(key: str) -> QuerySet[Generation]:
    """Succeeded images with this key, made on their batch's own provider, that still have a file."""
    return Generation.objects.filter(cache_key=key, status=GenerationStatus.SUCCEEDED, provider_index=0).exclude(
        image=""
    )


def hit_exists(key: str) -> bool:
    return bool(key) and sources(key).exists()


def keys_in_flight(owner_id: int) -> QuerySet[Generation, str]:
    """Keys of the owner's images being rendered now: their twins wait and copy them afterwards."""
    running = Generation.objects.filter(
        batch__owner_id=owner_id, status=GenerationStatus.RUNNING, provider_index=0
    ).exclude(cache_key="")
    return running.values_list("cache_key", flat=True)


@dataclass(frozen=True)
class CachedCopy:
    stored: StoredImage
    source: Generation

    @property
    def saved_usd(self) -> Decimal | None:
        """What the provider call would have cost: what the source cost (or saved, if a copy itself)."""
        return self.source.cache_saved_usd if self.source.cached else self.source.cost_usd


def cache_copy(*, generation: Generation, base_name: str) -> CachedCopy | None:
    """Copy the newest source's image and thumbnail to `base_name`; None when there is no source."""
    if not generation.cache_key or generation.provider_index != 0:
        return None
    for source in sources(generation.cache_key).exclude(pk=generation.pk).order_by("-finished_at")[:3]:
        try:
            stored = _copy_files(source, base_name)
        except FileNotFoundError:
            continue  # its file is gone (deleted meanwhile): try an older twin
        return CachedCopy(stored=stored, source=source)
    return None


def _copy_files(source: Generation, base_name: str) -> StoredImage:
    names: list[str] = []
    try:
        for field, wanted in (
            (source.image, f"images/{base_name}.png"),
            (source.thumbnail, f"thumbnails/{base_name}.webp"),
        ):
            if not field.name:
                names.append("")
                continue
            with default_storage.open(field.name, "rb") as handle:
                data = handle.read()
            names.append(default_storage.save(wanted, ContentFile(data)))
    except FileNotFoundError:
        _delete(names)
        raise
    except Exception as exc:  # any storage backend's failure
        _delete(names)
        raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return StoredImage(
        image_name=names[0],
        thumbnail_name=names[1],
        content_hash=source.content_hash,
        width=source.width,
        height=source.height,
    )


def _delete(names: list[str]) -> None:
    for name in names:
        if name:
            with contextlib.suppress(Exception):  # best effort: the sweeper removes what is left
                default_storage.delete(name)
