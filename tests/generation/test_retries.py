"""Retries of transient provider failures: backoff, Retry-After, provider cooldown, the 429 time budget."""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from generation import scheduler, tasks
from generation.lifecycle import retry_delay
from generation.models import Generation, GenerationStatus, ProviderCooldown
from generation.providers.base import ProviderError
from generation.services import batch_cancel
from tests.fakeserver import Reply, trickling_server
from tests.generation.providerfakes import png_bytes, server

__all__ = ["server"]
PATH = "/v1/images/generations"
OK = Reply(200, {"data": [{"b64_json": base64.b64encode(png_bytes()).decode()}]})


def scripted(*replies):
    queue = list(replies)
    times = []

    def handler(_request):
        times.append(time.monotonic())
        return queue.pop(0) if len(queue) > 1 else queue[0]

    handler.times = times
    return handler


def openai_batch(make_batch, **extra):
    return make_batch(provider="openai", model="dall-e-2", prompts=["a red fox"], width=512, height=512, **extra)


def test_a_transient_500_is_retried_and_then_succeeds(server, make_batch):
    server.route("POST", PATH, scripted(Reply(500, {"error": {"message": "boom"}}), OK))
    batch = openai_batch(make_batch)
    generation = batch.generations.get()
    assert (batch.status, generation.status, generation.attempts) == ("completed", "succeeded", 2)
    assert generation.error_code == ""


def test_a_permanent_400_fails_at_once_with_the_providers_message(server, make_batch):
    server.route("POST", PATH, Reply(400, {"error": {"message": "Invalid prompt: too weird", "code": None}}))
    generation = openai_batch(make_batch).generations.get()
    assert (generation.status, generation.attempts, generation.error_code) == ("failed", 1, "bad_request")
    assert "Invalid prompt: too weird" in generation.error_message
    assert len(server.requests) == 1


def test_content_policy_fails_with_content_filtered(server, make_batch):
    server.route("POST", PATH, Reply(400, {"error": {"message": "rejected", "code": "content_policy_violation"}}))
    generation = openai_batch(make_batch).generations.get()
    assert (generation.status, generation.error_code) == ("failed", "content_filtered")


def test_retries_stop_after_the_last_attempt_with_the_last_error_recorded(server, make_batch, settings):
    server.route("POST", PATH, Reply(503, {"error": {"message": "overloaded"}}))
    generation = openai_batch(make_batch).generations.get()
    assert (generation.status, generation.attempts) == ("failed", settings.GENERATION_MAX_ATTEMPTS)
    assert generation.error_code == "server_error"
    assert "overloaded" in generation.error_message
    assert len(server.requests) == settings.GENERATION_MAX_ATTEMPTS


def test_a_429_waits_for_retry_after_and_cools_the_whole_provider_down(server, make_batch):
    handler = scripted(Reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "1"}), OK)
    server.route("POST", PATH, handler)
    generation = openai_batch(make_batch).generations.get()
    assert generation.status == "succeeded"
    assert generation.attempts == 1, "a 429 spends no attempt"
    assert handler.times[1] - handler.times[0] >= 0.95
    assert ProviderCooldown.objects.get(provider="openai").until > timezone.now() - timedelta(seconds=5)


def test_a_429_pauses_the_provider_for_exactly_retry_after_and_waits_in_the_table(server, make_batch):
    server.route("POST", PATH, scripted(Reply(429, {"error": {"message": "slow"}}, {"Retry-After": "600"}), OK))
    before = timezone.now()
    batch = openai_batch(make_batch)
    generation = batch.generations.get()
    assert (generation.status, generation.attempts, generation.error_code) == ("pending", 0, "rate_limited")
    until = ProviderCooldown.objects.get(provider="openai").until
    assert before + timedelta(seconds=599) <= until <= timezone.now() + timedelta(seconds=601)
    assert generation.not_before == until
    assert tasks.dispatch_now() == 0  # not due yet: no worker is given it
    past = timezone.now() - timedelta(seconds=1)
    Generation.objects.filter(pk=generation.pk).update(not_before=past)
    ProviderCooldown.objects.update(until=past)
    assert tasks.dispatch_now() == 1
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == ("succeeded", 1)


def test_rate_limits_spend_a_time_budget_and_then_fail(server, make_batch, settings):
    settings.GENERATION_RATE_LIMIT_BUDGET_SECONDS = 0
    server.route("POST", PATH, Reply(429, {"error": {"message": "slow"}}, {"Retry-After": "1"}))
    batch = openai_batch(make_batch)
    Generation.objects.filter(batch=batch).update(not_before=None)
    ProviderCooldown.objects.all().delete()
    tasks.dispatch_now()
    generation = batch.generations.get()
    assert (generation.status, generation.error_code) == ("failed", "rate_limited")
    assert generation.error_permanent is False, "a rate limit is worth retrying later"


def test_a_generation_is_not_dispatched_before_its_not_before(make_batch):
    batch = make_batch(run=False, prompts=["x"])
    generation = batch.generations.get()
    Generation.objects.filter(pk=generation.pk).update(not_before=timezone.now() + timedelta(minutes=5))
    assert scheduler.dispatch(slots=1) == []
    Generation.objects.filter(pk=generation.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    assert [d.generation_id for d in scheduler.dispatch(slots=1)] == [generation.pk]


def test_cancelling_a_batch_stops_a_generation_waiting_for_its_retry(server, make_batch):
    server.route("POST", PATH, Reply(429, {"error": {"message": "slow"}}, {"Retry-After": "600"}))
    batch = batch_cancel(batch=openai_batch(make_batch))
    assert batch.status == "cancelled"
    assert batch.generations.get().status == GenerationStatus.CANCELLED


@pytest.mark.parametrize(("attempts", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (10, 120.0)])
def test_backoff_grows_exponentially_with_jitter_up_to_a_cap(settings, attempts, ceiling):
    settings.GENERATION_RETRY_BASE_SECONDS = 2.0
    settings.GENERATION_RETRY_MAX_SECONDS = 120.0
    generation = Generation(attempts=attempts, provider_index=0)
    error = ProviderError("server_error", "x", retryable=True)
    delays = [retry_delay(generation, error) for _ in range(50)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_backoff_is_never_shorter_than_retry_after():
    error = ProviderError("rate_limited", "x", retryable=True, retry_after=30)
    assert retry_delay(Generation(attempts=1, provider_index=0), error) == 30


def test_a_provider_that_trickles_its_answer_fails_the_attempt_within_its_budget(make_batch, settings):
    """Each byte comes within the read timeout: only the attempt's budget stops it, not the task timeout."""
    settings.OPENAI_API_KEY = "sk-test-operator"
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    settings.PROVIDER_READ_TIMEOUT = 0.5
    settings.GENERATION_PROVIDER_BUDGET_SECONDS = 1.5
    settings.GENERATION_MAX_ATTEMPTS = 1
    with trickling_server(pause=0.1, lasts=15) as url:
        settings.OPENAI_BASE_URL = f"{url}/v1"
        started = time.monotonic()
        generation = openai_batch(make_batch).generations.get()
        took = time.monotonic() - started
    assert (generation.status, generation.error_code) == ("failed", "timeout")
    assert 1.4 < took < 5
