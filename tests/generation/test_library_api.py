"""Keyset pages of the batch list, a batch's images and the library (GET /api/v1/generations/)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from generation.models import Batch, Generation

LIBRARY = "/api/v1/generations/"


def _walk(api: Any, url: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Follow `next` links to the end; every page but the last is full."""
    seen, body = [], api.get(url, params).json()
    while True:
        seen += body["results"]
        if not body["next"]:
            return seen
        assert len(body["results"]) == params["page_size"]
        body = api.get(body["next"]).json()


def test_batch_pages_visit_every_batch_once_even_when_created_at_ties(api: Any, make_batch: Any, owner: Any) -> None:
    batches = [make_batch(name=f"b{n}", prompts=["x"], run=False) for n in range(7)]
    Batch.objects.filter(pk__in=[b.pk for b in batches[2:5]]).update(created_at=timezone.now())
    walked = _walk(api, "/api/v1/batches/", {"page_size": 2})
    assert sorted(b["id"] for b in walked) == sorted(str(b.pk) for b in batches)
    assert api.get("/api/v1/batches/", {"page_size": 2}).json()["count"] == 7


def test_a_batchs_images_come_in_position_order_page_by_page(api: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=[f"p{n}" for n in range(5)], run=False)
    first = api.get(f"/api/v1/batches/{batch.pk}/generations/", {"page_size": 2}).json()
    assert first["count"] == 5 and first["next_cursor"]
    walked = _walk(api, f"/api/v1/batches/{batch.pk}/generations/", {"page_size": 2})
    assert [g["prompt"] for g in walked] == [f"p{n}" for n in range(5)]


def test_the_library_lists_my_images_across_batches_newest_batch_first(
    api: Any, make_batch: Any, other_user: Any
) -> None:
    old = make_batch(name="old", prompts=["o1", "o2", "o3"], run=False)
    new = make_batch(name="new", prompts=["n1", "n2"], run=False)
    make_batch(other_user, prompts=["theirs"], run=False)
    Batch.objects.filter(pk=old.pk).update(created_at=new.created_at - timezone.timedelta(hours=1))
    walked = _walk(api, LIBRARY, {"page_size": 2})
    assert [g["prompt"] for g in walked] == ["n1", "n2", "o1", "o2", "o3"]
    assert {g["batch_id"] for g in walked} == {str(old.pk), str(new.pk)}
    assert api.get(LIBRARY).json()["count"] is None  # never a count of the whole history


def test_the_library_pages_through_many_small_batches(api: Any, make_batch: Any) -> None:
    for n in range(12):
        make_batch(name=f"b{n}", prompts=[f"p{n}"], run=False)
    walked = _walk(api, LIBRARY, {"page_size": 5})
    assert [g["prompt"] for g in walked] == [f"p{n}" for n in reversed(range(12))]


def test_the_library_filters_by_search_provider_model_and_status(api: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=["一隻藍色的貓", "a red fox", "a fox cub"], run=False)
    Generation.objects.filter(batch=batch, prompt="a fox cub").update(status="failed", model="other")
    assert [g["prompt"] for g in api.get(LIBRARY, {"search": "貓"}).json()["results"]] == ["一隻藍色的貓"]
    assert [g["prompt"] for g in api.get(LIBRARY, {"search": "fox", "status": "failed"}).json()["results"]] == [
        "a fox cub"
    ]
    assert len(api.get(LIBRARY, {"provider": "local", "model": "other"}).json()["results"]) == 1
    assert api.get(LIBRARY, {"provider": "nope"}).json()["results"] == []


def test_search_results_page_too(api: Any, make_batch: Any) -> None:
    make_batch(prompts=[f"貓 {n}" for n in range(5)] + ["狗"], run=False)
    assert len(_walk(api, LIBRARY, {"search": "貓", "page_size": 2})) == 5


def test_a_cursor_that_is_not_ours_gives_the_first_page(api: Any, make_batch: Any) -> None:
    make_batch(run=False)
    for url in (LIBRARY, "/api/v1/batches/"):
        first = api.get(url).json()["results"]
        assert api.get(url, {"cursor": "garbage!"}).json()["results"] == first
        wrong_types = "WyJub3QgYSBkYXRlIiwibm90IGEgdXVpZCIsIngiXQ"  # ["not a date","not a uuid","x"]
        assert api.get(url, {"cursor": wrong_types}).json()["results"] == first
        assert api.get(url, {"page_size": "many"}).json()["error"]["details"] == {
            "page_size": ["A whole number is required."]
        }


def test_the_library_needs_a_login_and_only_reads(client: Any, api: Any) -> None:
    assert client.get(LIBRARY).status_code == 401
    assert api.post(LIBRARY, {}).status_code == 405


def test_the_portals_numbered_pages_of_a_batch_still_work(api: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=[f"p{n}" for n in range(5)], run=False)
    url = f"/api/v1/batches/{batch.pk}/generations/"
    second = api.get(url, {"page_size": 2, "page": 2}).json()
    assert [g["prompt"] for g in second["results"]] == ["p2", "p3"] and second["count"] == 5
    assert api.get(url, {"page": "two"}).json()["error"]["details"] == {"page": ["A whole number is required."]}
