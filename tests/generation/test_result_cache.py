"""The result cache: an identical image (same user, explicit seed) is copied instead of paid for again."""

from __future__ import annotations

import base64
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.files.storage import default_storage
from django.utils import timezone

from generation import lifecycle, limits, rollups, runner, stats
from generation.models import Batch, Generation, GenerationStatus
from generation.result_cache import cache_key
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes, server

__all__ = ["server"]
PATH = "/v1/images/generations"
REQUEST = {"provider": "openai", "model": "dall-e-2", "width": 512, "height": 512, "seed": 7}


def paid_calls(server) -> int:
    return sum(1 for request in server.requests if request.path == PATH)


def answer_with_an_image(server) -> None:
    image = {"b64_json": base64.b64encode(png_bytes()).decode()}
    server.route("POST", PATH, Reply(200, {"created": 1, "data": [image]}))


def only(batch: Batch) -> Generation:
    return batch.generations.get()


def test_the_same_request_twice_calls_the_provider_once(server, make_batch):
    answer_with_an_image(server)
    first = only(make_batch(prompts=["a red fox"], **REQUEST))
    second_batch = make_batch(prompts=["a red fox"], **REQUEST)
    second = only(second_batch)
    assert paid_calls(server) == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.status == GenerationStatus.SUCCEEDED
    assert first.cost_usd is not None and first.cost_usd > 0
    assert (second.cost_usd, second.cache_saved_usd) == (Decimal(0), first.cost_usd)
    assert second_batch.cost_usd == 0
    assert second.metadata["cached_from"] == str(first.pk)
    assert second.provider_latency_ms is None  # a copy says nothing about the provider's speed


def test_a_copy_has_its_own_files_so_deleting_the_original_keeps_it(server, make_batch):
    answer_with_an_image(server)
    first = only(make_batch(prompts=["a red fox"], **REQUEST))
    second = only(make_batch(prompts=["a red fox"], **REQUEST))
    assert second.image.name != first.image.name
    assert second.content_hash == first.content_hash
    default_storage.delete(str(first.image.name))
    default_storage.delete(str(first.thumbnail.name))
    first.batch.delete()
    with default_storage.open(str(second.image.name), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert default_storage.exists(str(second.thumbnail.name))


def test_a_duplicate_within_one_batch_renders_once(server, make_batch):
    answer_with_an_image(server)
    batch = make_batch(prompts=["a red fox", "a red fox", "a blue cat"], **REQUEST)
    assert batch.status == "completed"
    assert paid_calls(server) == 2
    assert list(batch.generations.order_by("position").values_list("cached", flat=True)) == [False, True, False]


def test_without_an_explicit_seed_nothing_is_cached(server, make_batch):
    answer_with_an_image(server)
    request = {**REQUEST, "seed": None}
    make_batch(prompts=["a red fox"], **request)
    second = only(make_batch(prompts=["a red fox"], **request))
    assert paid_calls(server) == 2
    assert (second.cached, second.cache_key) == (False, "")


def test_a_batch_can_opt_out(server, make_batch):
    answer_with_an_image(server)
    make_batch(prompts=["a red fox"], **REQUEST)
    opted_out = make_batch(prompts=["a red fox"], cache=False, **REQUEST)
    assert paid_calls(server) == 2
    assert not only(opted_out).cached
    assert opted_out.parameters["cache"] is False


def test_anything_different_is_a_new_image(server, make_batch):
    answer_with_an_image(server)
    make_batch(prompts=["a red fox"], **REQUEST)
    make_batch(prompts=["a red fox"], **{**REQUEST, "seed": 8})
    make_batch(prompts=["a red fox"], **{**REQUEST, "width": 256, "height": 256})
    make_batch(prompts=["a red fox "], **{**REQUEST, "model": "dall-e-3", "width": 1024, "height": 1024})
    assert paid_calls(server) == 4


def test_users_never_share_cached_images(server, make_batch, other_user):
    answer_with_an_image(server)
    make_batch(prompts=["a red fox"], **REQUEST)
    theirs = only(make_batch(other_user, prompts=["a red fox"], **REQUEST))
    assert paid_calls(server) == 2
    assert not theirs.cached


def test_a_cache_hit_takes_no_provider_permit(server, make_batch, settings):
    answer_with_an_image(server)
    make_batch(prompts=["a red fox"], **REQUEST)
    settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS, "openai": {"concurrency": 1, "rpm": 1}}
    assert limits.provider_slot_acquire(provider="openai", holder="someone-else").granted  # the only permit
    hit = make_batch(prompts=["a red fox"], **REQUEST)
    assert (hit.status, only(hit).cached) == ("completed", True)
    miss = make_batch(prompts=["a green owl"], **REQUEST, run=True)
    assert miss.status == "queued"  # a real call waits for the permit
    assert paid_calls(server) == 1


def test_a_hit_whose_original_vanished_goes_back_to_the_queue_without_calling(server, make_batch, settings):
    answer_with_an_image(server)
    first = only(make_batch(prompts=["a red fox"], **REQUEST))
    settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS, "openai": {"concurrency": 1, "rpm": 0}}
    second = only(make_batch(prompts=["a red fox"], run=False, **REQUEST))
    # Dispatched as a hit (no permit), then the original is deleted before the worker copies it.
    attempt = lifecycle.generation_dispatch(generation_id=second.pk, attempts=0, now=timezone.now())
    assert attempt is not None
    Generation.objects.filter(pk=first.pk).delete()
    assert runner.generation_run(generation_id=second.pk, attempt=attempt) == GenerationStatus.PENDING
    second.refresh_from_db()
    assert (second.error_code, second.attempts) == ("cache_miss", 0)
    assert paid_calls(server) == 1


def test_the_key_covers_the_owner_and_every_parameter():
    base: dict[str, Any] = {
        "owner_id": 1, "provider": "openai", "model": "dall-e-2", "prompt": "a fox", "negative_prompt": "",
        "width": 512, "height": 512, "seed": 7, "options": {"quality": "hd", "style": "vivid"},
    }  # fmt: skip
    key = cache_key(**base)
    assert key == cache_key(**{**base, "options": {"style": "vivid", "quality": "hd"}})
    for name, value in [("owner_id", 2), ("prompt", "a cat"), ("negative_prompt", "blur"), ("seed", 8),
                        ("options", {"quality": "standard", "style": "vivid"}), ("width", 256)]:  # fmt: skip
        assert cache_key(**{**base, name: value}) != key


def test_the_api_takes_cache_false_and_shows_cached(server, api, make_batch, django_capture_on_commit_callbacks):
    answer_with_an_image(server)
    make_batch(prompts=["a red fox"], **REQUEST)
    body = {**REQUEST, "prompts": ["a red fox"]}
    with django_capture_on_commit_callbacks(execute=True):
        cached = api.post("/api/v1/batches/", body, format="json")
        fresh = api.post("/api/v1/batches/", {**body, "cache": False}, format="json")
    assert (cached.status_code, fresh.status_code) == (201, 201)
    assert fresh.json()["parameters"]["cache"] is False
    images = api.get(f"/api/v1/batches/{cached.json()['id']}/generations/").json()["results"]
    assert [(image["cached"], image["cost_usd"]) for image in images] == [(True, "0.00000")]
    fresh_images = api.get(f"/api/v1/batches/{fresh.json()['id']}/generations/").json()["results"]
    assert fresh_images[0]["cached"] is False
    assert api.post("/api/v1/batches/", {**body, "cache": "maybe"}, format="json").status_code == 400


def test_rollups_count_hits_and_money_saved(server, make_batch):
    answer_with_an_image(server)
    first = only(make_batch(prompts=["a red fox"], **REQUEST))
    make_batch(prompts=["a red fox"], **REQUEST)
    make_batch(prompts=["a red fox"], **REQUEST)
    live = stats.totals_by_model()[("openai", "dall-e-2")]  # before any rollup: read from the tail
    rollups.rollup_advance(now=timezone.now() + timedelta(minutes=2))
    rolled = stats.totals_by_model()[("openai", "dall-e-2")]
    for tally in (live, rolled):
        assert (tally.counts["succeeded"], tally.counts["cached"]) == (3, 2)
        assert tally.saved_usd == 2 * (first.cost_usd or 0)
        assert tally.cache_hit_rate == 2 / 3


def test_seeds_given_per_prompt_are_explicit_and_cached(server, owner, django_capture_on_commit_callbacks):
    from generation import services
    from generation.models import BatchSource

    answer_with_an_image(server)
    request = {key: value for key, value in REQUEST.items() if key != "seed"}
    made = []
    for _ in range(2):
        spec = services.check_batch_request(prompts=["a red fox", "a blue owl"], **request)
        with django_capture_on_commit_callbacks(execute=True):
            batch = services.batch_create(owner=owner, spec=spec, source=BatchSource.API, prompt_seeds=[11, 12])
        made.append(sorted(batch.generations.values_list("seed", "cached")))
    assert made == [[(11, False), (12, False)], [(11, True), (12, True)]]
    assert paid_calls(server) == 2
