"""The result cache on the dashboard and in /metrics: hit rate and money saved, read from the rollups."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from generation import rollups
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes, server

__all__ = ["server"]
REQUEST = {"provider": "openai", "model": "dall-e-2", "width": 512, "height": 512, "seed": 7, "prompts": ["a fox"]}


@pytest.fixture
def three_images_two_hits(server: Any, make_batch: Any) -> Any:
    image = {"created": 1, "data": [{"b64_json": base64.b64encode(png_bytes()).decode()}]}
    server.route("POST", "/v1/images/generations", Reply(200, image))
    first = make_batch(**REQUEST).generations.get()
    make_batch(**REQUEST)
    make_batch(**REQUEST)
    return first


@pytest.mark.django_db
@pytest.mark.parametrize("rolled_up", [False, True])
def test_the_dashboard_shows_hit_rate_and_money_saved(client: Client, staff: Any, three_images_two_hits: Any,
                                                      rolled_up: bool) -> None:  # fmt: skip
    if rolled_up:
        rollups.rollup_advance(now=timezone.now() + timedelta(minutes=2))
    client.force_login(staff)
    cache = client.get("/monitoring/data?range=day").json()["cache"]
    saved = round(2 * float(three_images_two_hits.cost_usd), 4)
    assert cache == {"images": 3, "hits": 2, "hit_rate_percent": 66.7, "saved_usd": saved}
    page = client.get("/monitoring/").content.decode()
    assert 'id="tile-cache-rate"' in page and 'id="tile-cache-saved"' in page


@pytest.mark.django_db
def test_the_dashboard_has_no_hit_rate_before_any_image(client: Client, staff: Any) -> None:
    client.force_login(staff)
    cache = client.get("/monitoring/data?range=hour").json()["cache"]
    assert cache == {"images": 0, "hits": 0, "hit_rate_percent": None, "saved_usd": 0.0}


@pytest.mark.django_db
def test_metrics_count_cache_hits_and_money_saved(client: Client, three_images_two_hits: Any) -> None:
    rollups.rollup_advance(now=timezone.now() + timedelta(minutes=2))
    text = client.get("/metrics").content.decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    [hits] = [s for s in families["imagegen_cache_hits"].samples if s.name.endswith("_total")]
    [saved] = [s for s in families["imagegen_cache_saved_usd"].samples if s.name.endswith("_total")]
    assert (hits.labels["provider"], hits.value) == ("openai", 2)
    assert saved.value == pytest.approx(2 * float(three_images_two_hits.cost_usd))
