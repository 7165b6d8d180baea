"""Batch services: validation, creation, cancel, retry and the derived batch status."""

from __future__ import annotations

import pytest

from generation import lifecycle, services
from generation.models import BatchStatus, Generation, GenerationStatus
from imagegen.errors import Conflict, ValidationFailed


def check(**request):
    request.setdefault("prompts", ["a red fox"])
    return services.check_batch_request(**request)


class TestCheckBatchRequest:
    def test_defaults_to_the_local_provider_its_first_model_and_default_size(self):
        spec = check()
        assert (spec.provider.name, spec.model.id) == ("local", "procedural-v1")
        assert (spec.width, spec.height) == (512, 512)

    def test_blank_lines_are_dropped_and_the_name_defaults_to_the_first_prompt(self):
        spec = check(prompts=["  ", "一隻貓 🐱", "", "a dog"])
        assert spec.prompts == ["一隻貓 🐱", "a dog"]
        assert spec.name == "一隻貓 🐱"

    def test_templates_expand_into_every_combination(self):
        spec = check(prompts=["a {red|blue} {cat|狗}"], template=True)
        assert spec.prompts == ["a red cat", "a red 狗", "a blue cat", "a blue 狗"]

    def test_without_template_braces_are_kept_as_written(self):
        assert check(prompts=["a {red|blue} cat"]).prompts == ["a {red|blue} cat"]

    @pytest.mark.parametrize(
        ("request_fields", "field", "code"),
        [
            ({"provider": "nope"}, "provider", "unknown_provider"),
            ({"model": "sdxl"}, "model", "unknown_model"),
            ({"prompts": ["", "  "]}, "prompts", "no_prompts"),
            ({"prompts": ["x" * 5000]}, "prompts", "prompt_too_long"),
            ({"width": 500, "height": 500}, "size", "unsupported_size"),
            ({"images_per_prompt": 0}, "images_per_prompt", "validation_error"),
            ({"images_per_prompt": 99}, "images_per_prompt", "validation_error"),
            ({"seed": 2**40}, "seed", "validation_error"),
            ({"prompts": ["a {red|blue"], "template": True}, "prompts", "invalid_template"),
        ],
    )
    def test_bad_input_names_the_field_and_a_stable_code(self, request_fields, field, code):
        with pytest.raises(ValidationFailed) as caught:
            check(**request_fields)
        assert caught.value.code == code
        assert field in caught.value.details

    def test_too_many_prompts_are_refused(self, settings):
        settings.MAX_PROMPTS_PER_BATCH = 3
        with pytest.raises(ValidationFailed) as caught:
            check(prompts=["a", "b", "c", "d"])
        assert caught.value.code == "too_many_prompts"

    def test_a_template_that_expands_past_the_limit_is_refused(self, settings):
        settings.MAX_PROMPTS_PER_BATCH = 3
        with pytest.raises(ValidationFailed):
            check(prompts=["{a|b} {c|d}"], template=True)


class TestBatchCreate:
    def test_creates_one_generation_per_image_in_prompt_order(self, make_batch):
        batch = make_batch(prompts=["one", "two"], images_per_prompt=2, seed=100, run=False)
        rows = list(batch.generations.values_list("position", "prompt", "seed", "status"))
        assert rows == [
            (0, "one", 100, "pending"),
            (1, "one", 101, "pending"),
            (2, "two", 100, "pending"),
            (3, "two", 101, "pending"),
        ]
        assert batch.total == 4
        assert batch.status == BatchStatus.QUEUED

    def test_random_seeds_when_none_is_given(self, make_batch):
        batch = make_batch(prompts=["same"], images_per_prompt=4, run=False)
        assert len(set(batch.generations.values_list("seed", flat=True))) > 1

    def test_queued_work_renders_every_image(self, make_batch):
        batch = make_batch(prompts=["a red fox", "藍色海洋"])
        assert batch.status == BatchStatus.COMPLETED
        assert (batch.completed, batch.failed, batch.progress) == (2, 0, 1.0)
        assert batch.started_at and batch.finished_at
        for generation in batch.generations.all():
            assert generation.image.name.endswith(".png")
            assert generation.thumbnail.name.endswith(".webp")
            assert len(generation.content_hash) == 64

    def test_nothing_is_queued_when_the_transaction_does_not_commit(self, owner, django_capture_on_commit_callbacks):
        spec = check()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.batch_create(owner=owner, spec=spec)
        assert len(callbacks) == 1  # enqueueing waits for the commit


class TestBatchCancel:
    def test_cancel_stops_pending_generations(self, make_batch):
        batch = make_batch(prompts=["a", "b", "c"], run=False)
        batch = services.batch_cancel(batch=batch)
        assert batch.status == BatchStatus.CANCELLED
        assert batch.cancelled == 3
        assert set(batch.generations.values_list("status", flat=True)) == {GenerationStatus.CANCELLED}

    def test_a_running_generation_finishes_after_cancel(self, make_batch):
        batch = make_batch(prompts=["a", "b"], run=False)
        first = batch.generations.get(position=0)
        Generation.objects.filter(pk=first.pk).update(status=GenerationStatus.RUNNING, attempts=1)
        batch = services.batch_cancel(batch=batch)
        assert batch.status == BatchStatus.RUNNING  # still finishing the one in flight
        first.refresh_from_db()
        assert first.status == GenerationStatus.RUNNING

    def test_a_finished_batch_cannot_be_cancelled(self, make_batch):
        with pytest.raises(Conflict) as caught:
            services.batch_cancel(batch=make_batch())
        assert caught.value.code == "batch_not_active"


class TestBatchRetryFailed:
    def test_retry_requeues_failed_images_and_completes_them(self, make_batch, run_queue):
        batch = make_batch(prompts=["a", "b"])
        Generation.objects.filter(batch=batch, position=1).update(
            status=GenerationStatus.FAILED, error_code="server_error", attempts=3
        )
        lifecycle.batch_refresh(batch_id=batch.pk)
        batch.refresh_from_db()
        assert batch.status == BatchStatus.PARTIAL
        with run_queue():
            batch = services.batch_retry_failed(batch=batch)
        batch.refresh_from_db()
        assert batch.status == BatchStatus.COMPLETED
        retried = batch.generations.get(position=1)
        assert (retried.status, retried.error_code, retried.attempts) == ("succeeded", "", 1)

    def test_retry_of_a_cancelled_batch_resumes_it(self, make_batch, run_queue):
        batch = services.batch_cancel(batch=make_batch(prompts=["a", "b"], run=False))
        with run_queue():
            services.batch_retry_failed(batch=batch)
        batch.refresh_from_db()
        assert batch.status == BatchStatus.COMPLETED
        assert batch.cancel_requested_at is None

    def test_nothing_to_retry_is_a_conflict(self, make_batch):
        with pytest.raises(Conflict) as caught:
            services.batch_retry_failed(batch=make_batch())
        assert caught.value.code == "nothing_to_retry"

    def test_an_active_batch_cannot_be_retried(self, make_batch):
        with pytest.raises(Conflict) as caught:
            services.batch_retry_failed(batch=make_batch(run=False))
        assert caught.value.code == "batch_active"


def counts(**values):
    base = {"total": 0, **{status.value: 0 for status in GenerationStatus}}
    base.update(values)
    base["total"] = sum(v for k, v in base.items() if k != "total")
    return base


@pytest.mark.parametrize(
    ("values", "cancel_requested", "expected"),
    [
        ({"pending": 3}, False, "queued"),
        ({"pending": 2, "running": 1}, False, "running"),
        ({"pending": 1, "succeeded": 1}, False, "running"),
        ({"succeeded": 3}, False, "completed"),
        ({"succeeded": 2, "failed": 1}, False, "partial"),
        ({"failed": 3}, False, "failed"),
        ({"succeeded": 1, "cancelled": 2}, True, "cancelled"),
        ({"running": 1, "cancelled": 2}, True, "running"),
        ({"succeeded": 3}, True, "completed"),
    ],
)
def test_batch_status_is_derived_from_its_generations(values, cancel_requested, expected):
    assert lifecycle.derive_status(counts(**values), cancel_requested=cancel_requested) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"pending": 3}, "paused"),
        ({"pending": 1, "succeeded": 2}, "paused"),
        ({"pending": 1, "running": 1}, "running"),  # what already runs finishes
        ({"succeeded": 3}, "completed"),
    ],
)
def test_a_paused_batch_shows_paused_until_its_running_images_end(values, expected):
    assert lifecycle.derive_status(counts(**values), cancel_requested=False, paused=True) == expected
