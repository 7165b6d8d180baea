"""The history page's rows (generation/history.py): links, labels, costs and times worked out once."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone, translation

from generation.history import history_rows


@pytest.mark.django_db
def test_a_row_shows_what_the_template_used_to_work_out(make_batch: Any) -> None:
    batch = make_batch(prompts=["a", "b", "c"])
    batch.failed, batch.completed, batch.cost_usd = 2, 1, Decimal("0.040049")
    batch.created_at = datetime(2026, 11, 29, 1, 5, tzinfo=ZoneInfo("UTC"))
    first = batch.generations.order_by("position").first()
    with translation.override("zh-hant"), timezone.override("Asia/Taipei"):
        (row,) = history_rows([batch], {batch.pk: [first.pk]})
    assert row["url"] == f"/batches/{batch.pk}/"
    assert row["status_label"] == "已完成"
    assert row["failed_text"] == "2 張失敗"
    assert row["cost"] == "0.0400"
    assert (row["created_iso"], row["created_text"]) == ("2026-11-29T09:05:00+08:00", "2026-11-29 09:05")
    assert row["thumbnails"] == [f"/api/v1/generations/{first.pk}/thumbnail/"]


@pytest.mark.django_db
def test_a_batch_with_nothing_made_shows_no_cost_and_no_failures(make_batch: Any) -> None:
    batch = make_batch(run=False)
    (row,) = history_rows([batch], {})
    assert (row["cost"], row["failed_text"], row["thumbnails"]) == ("", "", [])


@pytest.mark.django_db
def test_a_row_is_one_escaped_fragment_with_its_cells(make_batch: Any) -> None:
    batch = make_batch(name='<script>alert("x")</script>', prompts=["a", "b"])
    batch.failed, batch.completed = 1, 1
    first = batch.generations.order_by("position").first()
    with translation.override("en"):
        (row,) = history_rows([batch], {batch.pk: [first.pk]})
    html = str(row["html"])
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert f'<a href="/batches/{batch.pk}/">' in html
    assert f'<img src="/api/v1/generations/{first.pk}/thumbnail/"' in html
    assert f'<span class="status status-{batch.status}" data-status="{batch.status}">' in html
    assert '<progress max="2" value="2"></progress>' in html and "1/2 · 1 failed" in html
    assert html.count("<td>") == 6 and html.startswith("<tr>") and html.endswith("</tr>")
