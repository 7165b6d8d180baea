"""The scheduler: fair share between users, priority within a user, providers skipped not waited on."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from generation import limits, scheduler, services
from generation.models import BatchPriority, BatchSource, Generation, GenerationStatus, WorkerNode


def submit(user: User, prompts: int, **options):
    priority = options.pop("priority", BatchPriority.NORMAL)
    spec = services.check_batch_request(prompts=[f"{user.username} {n}" for n in range(prompts)], **options)
    return services.batch_create(owner=user, spec=spec, source=BatchSource.API, priority=priority)


def owners_of(dispatched) -> list[str]:
    ids = [item.generation_id for item in dispatched]
    names = dict(Generation.objects.filter(pk__in=ids).values_list("pk", "batch__owner__username"))
    return [names[i] for i in ids]


def finish(dispatched) -> None:
    ids = [item.generation_id for item in dispatched]
    Generation.objects.filter(pk__in=ids).update(status=GenerationStatus.SUCCEEDED, finished_at=timezone.now())


@pytest.fixture
def two_workers(db):
    WorkerNode.objects.create(id="node:test:1:a", host="elsewhere", pid=1, workers=2)


def test_a_small_batch_is_not_stuck_behind_a_big_one(owner, other_user, settings, two_workers):
    settings.SCHEDULER_PREFETCH = 0
    big = submit(owner, 300)
    first = scheduler.dispatch()
    assert owners_of(first) == ["owner", "owner"]
    small = submit(other_user, 2)
    finish(first[:1])  # one slot frees up: the other user, with nothing in flight, goes first
    second = scheduler.dispatch()
    assert owners_of(second) == ["other"]
    finish(first[1:])  # now each user holds one of the two workers
    assert owners_of(scheduler.dispatch()) == ["owner"]
    finish(second)
    assert owners_of(scheduler.dispatch()) == ["other"]
    assert small.generations.exclude(status=GenerationStatus.PENDING).count() == 2
    assert big.generations.exclude(status=GenerationStatus.PENDING).count() == 3


def test_free_slots_are_shared_evenly_between_users_with_work(owner, other_user, staff, settings, db):
    settings.SCHEDULER_PREFETCH = 0
    WorkerNode.objects.create(id="node:test:1:a", host="elsewhere", pid=1, workers=6)
    for user in (owner, other_user, staff):
        submit(user, 50)
    assert Counter(owners_of(scheduler.dispatch())) == {"owner": 2, "other": 2, "staff": 2}


def test_ties_go_to_the_user_served_longest_ago(owner, other_user, settings, db):
    WorkerNode.objects.create(id="node:test:1:a", host="elsewhere", pid=1, workers=1)
    settings.SCHEDULER_PREFETCH = 0
    submit(owner, 10)
    submit(other_user, 10)
    served = []
    for _ in range(4):
        dispatched = scheduler.dispatch()
        served += owners_of(dispatched)
        finish(dispatched)
    assert served in (["owner", "other"] * 2, ["other", "owner"] * 2)


def test_priority_orders_work_within_one_user(owner, staff, settings, two_workers):
    settings.SCHEDULER_PREFETCH = 0
    low = submit(staff, 3, priority=BatchPriority.LOW)
    normal = submit(staff, 3)
    high = submit(staff, 3, priority=BatchPriority.HIGH)
    dispatched = scheduler.dispatch()
    batches = set(
        Generation.objects.filter(pk__in=[d.generation_id for d in dispatched]).values_list("batch", flat=True)
    )
    assert batches == {high.pk}
    assert not low.generations.filter(status="running").exists()
    assert not normal.generations.filter(status="running").exists()


def test_a_user_never_passes_max_running_per_user(owner, settings, db):
    settings.MAX_RUNNING_PER_USER = 3
    WorkerNode.objects.create(id="node:test:1:a", host="elsewhere", pid=1, workers=8)
    submit(owner, 20)
    assert len(scheduler.dispatch()) == 3
    assert scheduler.dispatch() == []


def test_no_live_worker_means_nothing_is_dispatched(owner, db):
    WorkerNode.objects.create(
        id="node:test:1:a", host="elsewhere", pid=1, workers=4, heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    submit(owner, 3)
    assert scheduler.worker_slots() == 0
    assert scheduler.dispatch() == []


def test_a_provider_at_its_cap_is_skipped_and_other_work_goes_ahead(owner, other_user, settings, two_workers):
    settings.SCHEDULER_PREFETCH = 0
    settings.OPENAI_API_KEY = "sk-test"
    settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS, "openai": {"concurrency": 1, "rpm": 0}}
    limits.provider_slot_acquire(provider="openai", holder="someone-else")
    capped = submit(owner, 5, provider="openai", model="dall-e-2", width=512, height=512)
    local = submit(other_user, 5)
    dispatched = scheduler.dispatch()
    assert len(dispatched) == 2
    assert {d.batch_id for d in dispatched} == {local.pk}
    assert capped.generations.filter(status=GenerationStatus.PENDING, attempts=0).count() == 5


def test_paused_and_cancelled_batches_are_not_dispatched(owner, two_workers):
    paused = services.batch_pause(batch=submit(owner, 3))
    cancelled = submit(owner, 3)
    services.batch_cancel(batch=cancelled)
    assert scheduler.dispatch() == []
    services.batch_resume(batch=paused)
    assert {d.batch_id for d in scheduler.dispatch()} == {paused.pk}


def test_queue_position_and_eta_follow_the_owners_line(owner, other_user, settings, two_workers):
    settings.SCHEDULER_PREFETCH = 0
    first = submit(owner, 4)
    second = submit(owner, 6)
    scheduler.dispatch()
    first.refresh_from_db(), second.refresh_from_db()
    from generation import lifecycle

    first = lifecycle.batch_refresh(batch_id=first.pk)
    estimates = scheduler.estimates([first, second])
    assert estimates[first.pk].queue_position == 0  # its images are being made
    assert estimates[second.pk].queue_position == 1
    per_image = scheduler.DEFAULT_SECONDS_PER_IMAGE
    # two workers (2 slots + 0 prefetch) for one user: the second batch ends after both batches' images.
    assert estimates[second.pk].eta_seconds == int((4 + 6) * per_image / 2)
    assert estimates[first.pk].eta_seconds == int(4 * per_image / 2)


def test_a_batch_asked_about_alone_counts_everything_ahead_of_it_in_the_owners_line(
    owner, other_user, settings, two_workers
):
    settings.SCHEDULER_PREFETCH = 0
    owner.is_staff = True
    owner.save()
    oldest, middle = submit(owner, 3), submit(owner, 5)
    submit(other_user, 7)  # another user's line does not count; the two users share the two workers
    submit(owner, 2, priority=BatchPriority.HIGH)
    newest = submit(owner, 4)
    estimate = scheduler.estimates([newest])[newest.pk]
    assert estimate.queue_position == 4  # high, oldest and middle go first
    per_image = scheduler.DEFAULT_SECONDS_PER_IMAGE
    assert estimate.eta_seconds == int((2 + 3 + 5 + 4) * per_image / 1)
    assert scheduler.estimates([oldest])[oldest.pk].queue_position == 2
    assert scheduler.estimates([middle])[middle.pk].queue_position == 3
