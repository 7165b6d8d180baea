"""Quotas: images per day, images per batch and active batches are refused with 429 quota_exceeded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import UserQuota
from accounts.quotas import quota_reserve, quota_usage, quota_window
from generation.lifecycle import batch_refresh
from generation.models import Batch, Generation, GenerationStatus
from imagegen.errors import TooManyRequests

BATCHES = "/api/v1/batches/"


@pytest.fixture
def small_quota(settings):
    settings.DEFAULT_DAILY_IMAGE_QUOTA = 5
    settings.DEFAULT_MAX_IMAGES_PER_BATCH = 4
    settings.DEFAULT_MAX_ACTIVE_BATCHES = 2


def test_batch_over_the_daily_quota_is_refused_before_anything_is_queued(api, owner, small_quota, make_batch):
    make_batch(prompts=["a", "b", "c"])
    response = api.post(BATCHES, {"prompts": ["d", "e", "f"]}, format="json")
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"]["quota"] == "images_per_day"
    assert error["details"]["limit"] == 5 and error["details"]["used"] == 3 and error["details"]["remaining"] == 2
    assert error["details"]["resets_at"] == quota_window()[1].isoformat()
    assert int(response["Retry-After"]) > 0
    assert Batch.objects.filter(owner=owner).count() == 1


def test_batch_that_exactly_fits_is_accepted(api, small_quota, make_batch):
    make_batch(prompts=["a"])
    assert api.post(BATCHES, {"prompts": ["b", "c"], "images_per_prompt": 2}, format="json").status_code == 201


def test_batch_larger_than_the_per_batch_limit_is_refused(api, small_quota):
    response = api.post(BATCHES, {"prompts": ["a"], "images_per_prompt": 5}, format="json")
    assert response.status_code == 429
    assert response.json()["error"]["details"]["quota"] == "images_per_batch"
    assert "Retry-After" not in response


def test_too_many_active_batches_are_refused(api, small_quota, make_batch):
    make_batch(prompts=["a"], run=False)
    make_batch(prompts=["b"], run=False)
    response = api.post(BATCHES, {"prompts": ["c"]}, format="json")
    assert response.status_code == 429
    assert response.json()["error"]["details"] == {
        "quota": "active_batches",
        "limit": 2,
        "used": 2,
        "remaining": 0,
        "resets_at": None,
    }


def test_cancelled_images_are_refunded(api, owner, small_quota, make_batch):
    batch = make_batch(prompts=["a", "b", "c", "d"], run=False)
    assert api.post(f"{BATCHES}{batch.id}/cancel/").status_code == 200
    assert quota_usage(user=owner).images_today == 0
    assert api.post(BATCHES, {"prompts": ["e", "f", "g", "h"]}, format="json").status_code == 201


def test_failed_images_are_refunded_and_retry_charges_them_again(api, owner, small_quota, make_batch):
    batch = make_batch(prompts=["a", "b", "c", "d"])
    Generation.objects.filter(batch=batch).update(status=GenerationStatus.FAILED)
    batch_refresh(batch_id=batch.pk)  # the batch's counters are what the quota reads
    assert quota_usage(user=owner).images_today == 0
    make_batch(prompts=["x", "y"])
    response = api.post(f"{BATCHES}{batch.id}/retry/")
    assert response.status_code == 429
    assert response.json()["error"]["details"]["quota"] == "images_per_day"


def test_yesterdays_images_do_not_count(owner, small_quota, make_batch):
    batch = make_batch(prompts=["a", "b", "c"])
    yesterday = quota_window()[0] - timedelta(minutes=1)
    Generation.objects.filter(batch=batch).update(created_at=yesterday)
    Batch.objects.filter(pk=batch.pk).update(created_at=yesterday)
    assert quota_usage(user=owner).images_today == 0


def test_a_per_user_override_beats_the_default(owner, small_quota, make_batch):
    UserQuota.objects.create(user=owner, daily_images=100, max_images_per_batch=50)
    usage = quota_reserve(user=owner, images=40)
    assert usage.limits.images_per_day == 100 and usage.limits.images_per_batch == 50
    assert usage.limits.active_batches == 2


def test_a_zero_override_blocks_the_user(owner):
    UserQuota.objects.create(user=owner, daily_images=0)
    with pytest.raises(TooManyRequests) as error:
        quota_reserve(user=owner, images=1)
    assert error.value.code == "quota_exceeded"


def test_quotas_are_per_user(api, other_api, small_quota, make_batch):
    make_batch(prompts=["a", "b", "c", "d"])
    assert other_api.post(BATCHES, {"prompts": ["a", "b", "c", "d"]}, format="json").status_code == 201


def test_portal_shows_the_quota_error_on_the_form(client, owner, small_quota):
    client.force_login(owner)
    form = {
        "name": "",
        "model": "local:procedural-v1",
        "prompts": "a\nb\nc",
        "size": "512x512",
        "images_per_prompt": 2,
        "seed": "",
    }
    response = client.post(reverse("generation:batch_new"), form)
    assert response.status_code == 200
    assert "at most 4" in response.content.decode()
    assert not Batch.objects.filter(owner=owner).exists()


def test_quota_window_runs_from_local_midnight_to_the_next():
    start, end = quota_window(timezone.now())
    assert end - start == timedelta(days=1)
    assert timezone.localtime(start).hour == 0


def _fail_on_an_earlier_day(batch):
    earlier = quota_window()[0] - timedelta(days=3)
    Generation.objects.filter(batch=batch).update(status=GenerationStatus.FAILED, created_at=earlier)
    Batch.objects.filter(pk=batch.pk).update(status="failed", created_at=earlier)


def test_retrying_old_batches_cannot_exceed_todays_quota(api, owner, small_quota, make_batch):
    old = []
    for _ in range(3):
        old.append(make_batch(prompts=["a", "b", "c"]))
        _fail_on_an_earlier_day(old[-1])
    assert api.post(f"{BATCHES}{old[0].id}/retry/").status_code == 200
    assert quota_usage(user=owner).images_today == 3
    response = api.post(f"{BATCHES}{old[1].id}/retry/")
    assert response.status_code == 429 and response.json()["error"]["details"]["quota"] == "images_per_day"
    assert Generation.objects.filter(batch=old[1], status=GenerationStatus.PENDING).count() == 0


def test_a_retried_old_image_stays_charged_today_when_it_fails_again(owner, small_quota, make_batch):
    from generation import services

    batch = make_batch(prompts=["a", "b"])
    _fail_on_an_earlier_day(batch)
    services.batch_retry_failed(batch=Batch.objects.get(pk=batch.pk))
    Generation.objects.filter(batch=batch).update(status=GenerationStatus.FAILED)
    assert quota_usage(user=owner).images_today == 2


def test_a_retry_of_todays_batch_is_not_charged_twice(owner, small_quota, make_batch):
    from generation import services

    batch = make_batch(prompts=["a", "b"])
    Generation.objects.filter(batch=batch).update(status=GenerationStatus.FAILED)
    Batch.objects.filter(pk=batch.pk).update(status="failed")
    services.batch_retry_failed(batch=Batch.objects.get(pk=batch.pk))
    assert quota_usage(user=owner).images_today == 2


def test_retrying_single_old_images_is_charged_today_too(api, owner, small_quota, make_batch):
    batch = make_batch(prompts=["a", "b", "c", "d"])
    _fail_on_an_earlier_day(batch)
    ids = list(Generation.objects.filter(batch=batch).order_by("position").values_list("id", flat=True))
    assert api.post(f"/api/v1/generations/{ids[0]}/retry/").status_code == 200
    assert quota_usage(user=owner).images_today == 1
    make_batch(prompts=["x", "y", "z", "w"])
    response = api.post(f"/api/v1/generations/{ids[1]}/retry/")
    assert response.status_code == 429 and response.json()["error"]["details"]["quota"] == "images_per_day"
