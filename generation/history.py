"""The history page's rows: what each row shows, worked out in Python once per page.

Django's template engine resolves every `{% url %}`, filter and include per row; for a page of 20
batches with their thumbnails that was most of the page's cost. Links are built from one reversed
pattern per route, dates and costs formatted here; the template only prints the values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import ngettext

from generation.models import Batch
from imagegen.routes import url_maker

_FOUR_PLACES = Decimal("0.0001")


def history_rows(batches: Iterable[Batch], strips: dict[uuid.UUID, list[uuid.UUID]]) -> list[dict[str, Any]]:
    detail_url = url_maker("generation:batch_detail")
    thumbnail_url = url_maker("api-generation-thumbnail")
    zone = timezone.get_current_timezone()
    rows = []
    for batch in batches:
        created = batch.created_at.astimezone(zone)
        rows.append(
            {
                "batch": batch,
                "url": detail_url(batch.pk),
                "status_label": batch.get_status_display(),
                "failed_text": _failed(batch.failed),
                "cost": f"{Decimal(batch.cost_usd).quantize(_FOUR_PLACES, ROUND_HALF_UP)}" if batch.completed else "",
                "created_iso": created.isoformat(),
                "created_text": created.strftime("%Y-%m-%d %H:%M"),
                "thumbnails": [thumbnail_url(generation_id) for generation_id in strips.get(batch.pk, [])],
            }
        )
    return rows


def _failed(count: int) -> str:
    if not count:
        return ""
    return ngettext("%(counter)s failed", "%(counter)s failed", count) % {"counter": count}
