"""Cluster-wide provider limits: in-flight slots, requests per minute and 429 cooldowns."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from generation import limits, tasks
from generation.models import ProviderPermit


@pytest.fixture
def capped(settings):
    settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS, "local": {"concurrency": 2, "rpm": 3}}


def acquire(holder):
    return limits.provider_slot_acquire(provider="local", holder=holder)


def test_concurrency_slots_run_out_and_come_back_when_released(db, capped):
    assert acquire("a").granted and acquire("b").granted
    assert not acquire("c").granted
    limits.provider_slot_release(provider="local", holder="a")
    assert acquire("c").granted
    assert limits.provider_in_flight(provider="local") == 2


def test_requests_per_minute_are_capped_and_say_when_the_next_one_is_free(db, capped):
    for holder in "abc":
        assert acquire(holder).granted
        limits.provider_slot_release(provider="local", holder=holder)
    refused = acquire("d")
    assert not refused.granted
    assert timezone.now() + timedelta(seconds=55) < refused.retry_at <= timezone.now() + timedelta(seconds=60)
    ProviderPermit.objects.filter(kind="rpm").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert acquire("d").granted


def test_a_refused_rpm_slot_gives_back_the_concurrency_slot(db, capped):
    for holder in "abc":
        acquire(holder)
        limits.provider_slot_release(provider="local", holder=holder)
    acquire("d")
    assert limits.provider_in_flight(provider="local") == 0


def test_an_expired_concurrency_lease_from_a_dead_worker_is_reused(db, capped):
    acquire("dead-1"), acquire("dead-2")
    ProviderPermit.objects.filter(kind="concurrency").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert acquire("alive").granted


def test_a_cooldown_holds_every_call_until_it_ends(db):
    until = limits.provider_cooldown_set(provider="local", seconds=30, reason="429")
    outcome = acquire("a")
    assert (outcome.granted, outcome.retry_at) == (False, until)
    limits.provider_cooldown_set(provider="local", seconds=5)  # never shortens a longer one
    assert limits.provider_cooldown_until(provider="local") == until


def test_zero_means_unlimited(db, settings):
    settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS, "local": {"concurrency": 0, "rpm": 0}}
    assert all(acquire(str(i)).granted for i in range(50))
    assert not ProviderPermit.objects.exists()


def test_a_provider_at_its_cap_is_skipped_without_spending_an_attempt(make_batch, capped, run_queue):
    acquire("other-1"), acquire("other-2")
    batch = make_batch(prompts=["x"])  # the scheduler finds no free permit: nothing starts
    generation = batch.generations.get()
    assert (generation.status, generation.attempts, generation.error_code) == ("pending", 0, "")
    limits.provider_slot_release(provider="local", holder="other-1")
    with run_queue():
        tasks.dispatch_now()
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == ("succeeded", 1)
    assert limits.provider_in_flight(provider="local") == 1  # only "other-2" still holds one


def test_a_cooling_provider_is_skipped_until_its_cooldown_ends(make_batch, db):
    limits.provider_cooldown_set(provider="local", seconds=60)
    generation = make_batch(prompts=["x"]).generations.get()
    assert (generation.status, generation.attempts) == ("pending", 0)
    assert limits.provider_is_blocked(provider="local")
