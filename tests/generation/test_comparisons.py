"""A/B comparisons: one batch per arm with the same prompts and seeds, votes, Wilson intervals, summaries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from generation import comparisons
from generation.comparisons import ArmRequest, WinRate, wilson_interval
from generation.models import Batch, Comparison, ComparisonVote, Generation, GenerationStatus
from imagegen.errors import Conflict, TooManyRequests, ValidationFailed

pytestmark = pytest.mark.django_db

ARMS = [ArmRequest(provider="local", width=256, height=256), ArmRequest(provider="local", width=512, height=512)]


@pytest.fixture
def make_comparison(owner, django_capture_on_commit_callbacks):
    def make(*, run: bool = True, arms=ARMS, prompts=("a red fox", "一隻藍色的貓 🐱", "forest at night"), **extra):
        spec = comparisons.check_comparison_request(prompts=list(prompts), arms=arms, user_id=owner.pk, **extra)
        with django_capture_on_commit_callbacks(execute=run):
            comparison = comparisons.comparison_create(owner=owner, spec=spec)
        return comparisons.comparison_get(user=owner, comparison_id=comparison.pk)

    return make


class TestCreate:
    def test_makes_one_batch_per_arm_with_the_same_prompts_and_seeds(self, make_comparison):
        comparison = make_comparison(run=False)
        arms = list(comparison.arms.all())
        assert [(a.index, a.width) for a in arms] == [(0, 256), (1, 512)]
        assert Batch.objects.count() == 2
        per_arm = [
            list(Generation.objects.filter(batch=a.batch).order_by("position").values_list("prompt", "seed"))
            for a in arms
        ]
        assert per_arm[0] == per_arm[1]
        assert [prompt for prompt, _seed in per_arm[0]] == comparison.prompts
        assert [seed for _prompt, seed in per_arm[0]] == comparison.seeds
        assert len(set(comparison.seeds)) == 3  # one generated seed per prompt

    def test_an_explicit_seed_is_used_for_every_prompt_and_arm(self, make_comparison):
        comparison = make_comparison(run=False, seed=42)
        assert comparison.seeds == [42, 42, 42]
        assert set(Generation.objects.values_list("seed", flat=True)) == {42}

    def test_labels_default_to_the_configuration_and_name_the_batches(self, make_comparison):
        comparison = make_comparison(run=False, name="Sizes")
        labels = [a.label for a in comparison.arms.all()]
        assert labels == ["local/procedural-v1 256×256", "local/procedural-v1 512×512"]
        assert comparison.arms.get(index=1).batch.name == "Sizes · local/procedural-v1 512×512"

    def test_the_batches_render_through_the_queue(self, make_comparison):
        comparison = make_comparison()
        assert set(Batch.objects.values_list("status", flat=True)) == {"completed"}
        assert all(row.votable for row in comparisons.comparison_rows(comparison))

    @pytest.mark.parametrize(
        ("arms", "field", "code"),
        [
            (ARMS[:1], "arms", "invalid_arm_count"),
            (ARMS * 3, "arms", "invalid_arm_count"),
        ],
    )
    def test_refuses_a_wrong_number_of_arms(self, owner, arms, field, code):
        with pytest.raises(ValidationFailed) as raised:
            comparisons.check_comparison_request(prompts=["a"], arms=arms, user_id=owner.pk)
        assert (raised.value.code, list(raised.value.details)) == (code, [field])

    @pytest.mark.parametrize(
        ("arm", "field", "code"),
        [
            (ArmRequest(provider="dall-e"), "provider", "unknown_provider"),
            (ArmRequest(provider="local", model="sdxl"), "model", "unknown_model"),
            (ArmRequest(provider="local", width=100, height=100), "size", "unsupported_size"),
            (ArmRequest(provider="local", options={"steps": 3}), "options", "unknown_option"),
        ],
    )
    def test_an_arms_error_keeps_the_batch_code_and_names_the_arm(self, owner, arm, field, code):
        with pytest.raises(ValidationFailed) as raised:
            comparisons.check_comparison_request(prompts=["a"], arms=[ARMS[0], arm], user_id=owner.pk)
        assert raised.value.code == code
        assert raised.value.details["arm"] == 1 and field in raised.value.details
        assert raised.value.message.startswith("Configuration 2: ")

    def test_refuses_no_prompts_and_a_bad_seed(self, owner):
        with pytest.raises(ValidationFailed) as raised:
            comparisons.check_comparison_request(prompts=["  ", ""], arms=ARMS, user_id=owner.pk)
        assert raised.value.code == "no_prompts"
        with pytest.raises(ValidationFailed) as raised:
            comparisons.check_comparison_request(prompts=["a"], arms=ARMS, seed=2**32, user_id=owner.pk)
        assert list(raised.value.details) == ["seed"]

    def test_a_quota_refusal_on_a_later_arm_writes_nothing(self, settings, make_comparison):
        settings.DEFAULT_DAILY_IMAGE_QUOTA = 4
        with pytest.raises(TooManyRequests) as raised:
            make_comparison(run=False)  # 3 prompts × 2 arms = 6 images: the second arm is refused
        assert raised.value.details["quota"] == "images_per_day"
        assert (Comparison.objects.count(), Batch.objects.count()) == (0, 0)


class TestVotes:
    def test_vote_and_change_it(self, make_comparison):
        comparison = make_comparison()
        comparisons.comparison_vote(comparison=comparison, prompt_index=0, winner=1)
        comparisons.comparison_vote(comparison=comparison, prompt_index=0, winner=None)
        vote = ComparisonVote.objects.get()
        assert (vote.prompt_index, vote.winner) == (0, None)
        rows = comparisons.comparison_rows(comparison)
        assert (rows[0].voted, rows[0].winner, rows[1].voted) == (True, None, False)

    def test_a_prompt_cannot_be_voted_before_every_arm_finished_it(self, make_comparison):
        comparison = make_comparison(run=False)
        with pytest.raises(Conflict) as raised:
            comparisons.comparison_vote(comparison=comparison, prompt_index=0, winner=0)
        assert raised.value.code == "prompt_not_ready"

    def test_a_failed_image_cannot_win_but_a_tie_is_allowed(self, make_comparison):
        comparison = make_comparison()
        arm = comparison.arms.get(index=1)
        Generation.objects.filter(batch=arm.batch, position=2).update(status=GenerationStatus.FAILED)
        with pytest.raises(Conflict) as raised:
            comparisons.comparison_vote(comparison=comparison, prompt_index=2, winner=1)
        assert raised.value.code == "winner_failed"
        comparisons.comparison_vote(comparison=comparison, prompt_index=2, winner=None)
        comparisons.comparison_vote(comparison=comparison, prompt_index=2, winner=0)

    @pytest.mark.parametrize(("prompt_index", "winner", "field"), [(3, 0, "prompt_index"), (0, 2, "winner")])
    def test_out_of_range_indexes_are_refused(self, make_comparison, prompt_index, winner, field):
        comparison = make_comparison()
        with pytest.raises(ValidationFailed) as raised:
            comparisons.comparison_vote(comparison=comparison, prompt_index=prompt_index, winner=winner)
        assert list(raised.value.details) == [field]


class TestWilson:
    @pytest.mark.parametrize(
        ("successes", "trials", "low", "high"),
        [
            # Reference values: Wilson (1927) / Newcombe (1998), 95 % two-sided.
            (8, 10, 0.4902, 0.9433),
            (0, 10, 0.0, 0.2775),
            (10, 10, 0.7225, 1.0),
            (50, 100, 0.4038, 0.5962),
            (81, 263, 0.2553, 0.3662),  # Newcombe's worked example
        ],
    )
    def test_known_intervals(self, successes, trials, low, high):
        interval = wilson_interval(successes, trials)
        assert interval == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))

    def test_no_votes_is_no_rate(self):
        assert WinRate.of(votes=0, wins=0, ties=0).rate is None

    def test_a_tie_counts_as_half_a_win(self):
        rate = WinRate.of(votes=10, wins=7, ties=2)
        assert rate.rate == pytest.approx(0.8)
        assert (rate.low, rate.high) == (pytest.approx(0.4902, abs=5e-5), pytest.approx(0.9433, abs=5e-5))


class TestSummary:
    def test_win_rates_costs_latency_and_failures_per_arm(self, make_comparison):
        comparison = make_comparison()
        first, second = comparison.arms.all()
        for position, latency in enumerate([100, 300, 200]):
            Generation.objects.filter(batch=first.batch, position=position).update(provider_latency_ms=latency)
        Generation.objects.filter(batch=second.batch).update(provider_latency_ms=50)
        Generation.objects.filter(batch=second.batch, position=2).update(status=GenerationStatus.FAILED)
        Batch.objects.filter(pk=first.batch_id).update(cost_usd=Decimal("0.12"))
        Batch.objects.filter(pk=second.batch_id).update(completed=2, failed=1, cost_usd=Decimal("0.05"))
        comparisons.comparison_vote(comparison=comparison, prompt_index=0, winner=0)
        comparisons.comparison_vote(comparison=comparison, prompt_index=1, winner=None)
        comparisons.comparison_vote(comparison=comparison, prompt_index=2, winner=0)

        comparison = comparisons.comparison_get(user=comparison.owner, comparison_id=comparison.pk)
        a, b = comparisons.comparison_summary(comparison)
        assert (a.wins.votes, a.wins.wins, a.wins.ties, a.wins.rate) == (3, 2, 1, pytest.approx(2.5 / 3))
        assert (b.wins.wins, b.wins.rate) == (0, pytest.approx(0.5 / 3))
        assert (a.wins.low, a.wins.high) == pytest.approx(wilson_interval(2.5, 3))
        assert (a.images.latency_p50_ms, a.images.latency_p95_ms) == (200, 300)
        assert (b.images.latency_p50_ms, b.images.latency_p95_ms) == (50, 50)
        assert a.images.cost_per_image_usd == Decimal("0.04000")
        assert b.images.cost_per_image_usd == Decimal("0.02500")
        assert (a.images.failure_rate, b.images.failure_rate) == (0.0, pytest.approx(1 / 3))
        assert (b.images.done, b.images.total) == (2, 3)

    def test_configurations_across_users_for_staff(
        self, make_comparison, other_user, django_capture_on_commit_callbacks
    ):
        mine = make_comparison(prompts=["a", "b"])
        spec = comparisons.check_comparison_request(prompts=["c"], arms=ARMS, user_id=other_user.pk)
        with django_capture_on_commit_callbacks(execute=True):
            theirs = comparisons.comparison_create(owner=other_user, spec=spec)
        theirs = comparisons.comparison_get(user=other_user, comparison_id=theirs.pk)
        comparisons.comparison_vote(comparison=mine, prompt_index=0, winner=1)
        comparisons.comparison_vote(comparison=mine, prompt_index=1, winner=None)
        comparisons.comparison_vote(comparison=theirs, prompt_index=0, winner=1)

        rows = {row.width: row.as_dict() for row in comparisons.configuration_summaries()}
        small, large = rows[256], rows[512]
        assert (small["comparisons"], small["votes"], small["wins"], small["ties"]) == (2, 3, 0, 1)
        assert (large["votes"], large["wins"], large["ties"]) == (3, 2, 1)
        assert large["win_rate"] == pytest.approx(2.5 / 3)
        assert (large["win_rate_low"], large["win_rate_high"]) == pytest.approx(wilson_interval(2.5, 3))
        assert (large["images_done"], large["images_total"], large["failure_rate"]) == (3, 3, 0.0)
        assert large["size"] == "512x512" and large["provider"] == "local"
