"""The history page's rows: what each row shows, worked out in Python once per page.

Django's template engine resolves every `{% url %}`, filter, variable and include per row; for a
page of 20 batches with their thumbnails that was most of the page's cost. Links are built from
one reversed pattern per route, dates and costs formatted here, and each row's cells put together
with every value escaped by html.escape (format_html per row cost more than the template did);
the template prints one fragment per row.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import ngettext

from generation.models import Batch
from imagegen.routes import url_maker

_FOUR_PLACES = Decimal("0.0001")
_ROW = (
    '<tr><td><a href="{url}">{name}</a>{strip}</td><td>{provider} · {model}</td>'
    '<td><span class="status status-{status}" data-status="{status}">{status_label}</span></td>'
    '<td><progress max="{total}" value="{finished}"></progress> '
    '<span class="muted">{completed}/{total}{failed}</span></td>'
    '<td>{cost}</td><td><time datetime="{created_iso}">{created_text}</time></td></tr>'
)
_THUMBNAIL = '<img src="{}" alt="" width="40" height="40" loading="lazy" decoding="async">'


def history_rows(batches: Iterable[Batch], strips: dict[uuid.UUID, list[uuid.UUID]]) -> list[dict[str, Any]]:
    detail_url = url_maker("generation:batch_detail")
    thumbnail_url = url_maker("api-generation-thumbnail")
    zone = timezone.get_current_timezone()
    # get_status_display() translates every choice's label on each call: once per page instead.
    status_labels = {value: str(label) for value, label in Batch._meta.get_field("status").flatchoices}
    rows = []
    for batch in batches:
        created = batch.created_at.astimezone(zone)
        row = {
            "batch": batch,
            "url": detail_url(batch.pk),
            "status_label": status_labels.get(batch.status, batch.status),
            "failed_text": _failed(batch.failed),
            "cost": f"{Decimal(batch.cost_usd).quantize(_FOUR_PLACES, ROUND_HALF_UP)}" if batch.completed else "",
            "created_iso": created.isoformat(),
            "created_text": created.strftime("%Y-%m-%d %H:%M"),
            "thumbnails": [thumbnail_url(generation_id) for generation_id in strips.get(batch.pk, [])],
        }
        row["html"] = _row_html(batch, row)
        rows.append(row)
    return rows


def _row_html(batch: Batch, row: dict[str, Any]) -> SafeString:
    """The row's cells; every value goes through html.escape (what Django's own escaping calls)."""
    e = html.escape
    strip = "".join(_THUMBNAIL.format(e(url)) for url in row["thumbnails"])
    return mark_safe(  # noqa: S308  # every value below is escaped here
        _ROW.format(
            url=e(row["url"]),
            name=e(batch.name),
            strip=f' <span class="history-strip">{strip}</span>' if strip else "",
            provider=e(batch.provider),
            model=e(batch.model),
            status=e(batch.status),
            status_label=e(str(row["status_label"])),
            total=batch.total,
            finished=batch.finished,
            completed=batch.completed,
            failed=f" · {e(row['failed_text'])}" if row["failed_text"] else "",
            cost=f"US${e(row['cost'])}" if row["cost"] else "—",
            created_iso=e(row["created_iso"]),
            created_text=e(row["created_text"]),
        )
    )


def _failed(count: int) -> str:
    if not count:
        return ""
    return ngettext("%(counter)s failed", "%(counter)s failed", count) % {"counter": count}
