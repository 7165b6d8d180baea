"""A/B comparisons: the same prompts and seeds on 2–4 configurations, the user's votes, per-arm summaries.

Each configuration ("arm") is an ordinary batch made by `services.batch_create`, so the scheduler,
quotas and provider caps treat it like any other batch. Prompt i is rendered with seed i by every
arm (a seed generated per prompt when none is given). A prompt can be voted on once every arm's
image for it has finished; the winner must be an arm whose image succeeded, or none for a tie.

Win rates count a tie as half a win for every arm, and come with a 95 % Wilson score interval.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from generation import services
from generation.models import (
    FINISHED_GENERATION_STATUSES,
    BatchSource,
    Comparison,
    ComparisonArm,
    ComparisonVote,
    Generation,
    GenerationStatus,
)
from generation.services import MAX_SEED, BatchSpec
from imagegen.errors import Conflict, NotFound, ValidationFailed
from imagegen.pagination import KeysetPage, keyset_page

MIN_ARMS = 2
MAX_ARMS = 4
MAX_COMPARISON_PROMPTS = 50
Z_95 = 1.959963984540054  # two-sided 95 % normal quantile
COMPARISON_ORDER = ("-created_at", "-id")
CONFIGURATION_ROWS = 20


# ---------------------------------------------------------------------------------------------- writes


@dataclass(frozen=True)
class ArmRequest:
    """One configuration as the user asked for it."""

    provider: str = ""
    model: str = ""
    width: int | None = None
    height: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class ArmSpec:
    label: str
    batch: BatchSpec


@dataclass(frozen=True)
class ComparisonSpec:
    """A validated comparison request: prompts, their seeds and one checked batch per arm."""

    name: str
    prompts: list[str]
    seeds: list[int]
    arms: list[ArmSpec]


def check_comparison_request(
    *, name: str = "", prompts: Sequence[str], arms: Sequence[ArmRequest], seed: int | None = None, user_id: int | None
) -> ComparisonSpec:
    """Validate with the batch checks; an arm's error keeps its code and names the arm in `details`."""
    cleaned = [p.strip() for p in prompts if p and p.strip()]
    if not cleaned:
        raise _invalid("prompts", _("Enter at least one prompt."), "no_prompts")
    limit = min(MAX_COMPARISON_PROMPTS, settings.MAX_PROMPTS_PER_BATCH)
    if len(cleaned) > limit:
        message = _("A comparison holds at most %(limit)d prompts.") % {"limit": limit}
        raise _invalid("prompts", message, "too_many_prompts")
    if not MIN_ARMS <= len(arms) <= MAX_ARMS:
        message = _("Compare between %(min)d and %(max)d configurations.") % {"min": MIN_ARMS, "max": MAX_ARMS}
        raise _invalid("arms", message, "invalid_arm_count")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise _invalid("seed", _("Seed must be between 0 and %(max)d.") % {"max": MAX_SEED})
    name = (name.strip() or cleaned[0])[:200]
    checked = [
        _check_arm(index, arm, name=name, prompts=cleaned, seed=seed, user_id=user_id) for index, arm in enumerate(arms)
    ]
    seeds = [seed] * len(cleaned) if seed is not None else [secrets.randbelow(MAX_SEED + 1) for _ in cleaned]
    return ComparisonSpec(name=name, prompts=cleaned, seeds=seeds, arms=checked)


def _invalid(field_name: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, details={field_name: [message]})


def _check_arm(
    index: int, arm: ArmRequest, *, name: str, prompts: list[str], seed: int | None, user_id: int | None
) -> ArmSpec:
    try:
        spec = services.check_batch_request(
            provider=arm.provider,
            model=arm.model,
            prompts=prompts,
            width=arm.width,
            height=arm.height,
            seed=seed,
            options=arm.options,
            user_id=user_id,
        )
    except ValidationFailed as error:
        message = _("Configuration %(number)d: %(message)s") % {"number": index + 1, "message": error.message}
        raise ValidationFailed(message, code=error.code, details={"arm": index, **error.details}) from None
    label = (arm.label.strip() or default_label(spec))[:100]
    return ArmSpec(label=label, batch=dataclasses.replace(spec, name=f"{name} · {label}"[:200]))


def default_label(spec: BatchSpec) -> str:
    options = " ".join(f"{key}={value}" for key, value in sorted(spec.parameters.options.items()))
    return " ".join(
        part for part in (f"{spec.provider.name}/{spec.model.id}", f"{spec.width}×{spec.height}", options) if part
    )


def comparison_create(*, owner: User, spec: ComparisonSpec, source: str = BatchSource.API) -> Comparison:
    """The comparison and one batch per arm in one transaction: a quota refusal on any arm writes nothing."""
    with transaction.atomic():
        comparison = Comparison.objects.create(
            owner=owner, name=spec.name, prompts=spec.prompts, seeds=spec.seeds, created_at=timezone.now()
        )
        for index, arm in enumerate(spec.arms):
            batch = services.batch_create(owner=owner, spec=arm.batch, source=source, prompt_seeds=spec.seeds)
            ComparisonArm.objects.create(
                comparison=comparison,
                index=index,
                label=arm.label,
                provider=arm.batch.provider.name,
                model=arm.batch.model.id,
                width=arm.batch.width,
                height=arm.batch.height,
                options=arm.batch.parameters.options,
                batch=batch,
            )
    return comparison


def comparison_vote(*, comparison: Comparison, prompt_index: int, winner: int | None) -> ComparisonVote:
    """Record (or change) the pick for one prompt: an arm index, or None for a tie."""
    if not 0 <= prompt_index < len(comparison.prompts):
        message = _("Prompt index must be between 0 and %(max)d.") % {"max": len(comparison.prompts) - 1}
        raise _invalid("prompt_index", message, "invalid_prompt_index")
    arms = {arm.index: arm for arm in comparison.arms.all()}
    if winner is not None and winner not in arms:
        message = _("Winner must be an arm index between 0 and %(max)d, or null for a tie.") % {"max": len(arms) - 1}
        raise _invalid("winner", message, "invalid_winner")
    statuses = dict(
        Generation.objects.filter(batch_id__in=[a.batch_id for a in arms.values()], position=prompt_index).values_list(
            "batch_id", "status"
        )
    )
    if len(statuses) < len(arms) or any(s not in FINISHED_GENERATION_STATUSES for s in statuses.values()):
        raise Conflict(_("Wait until every configuration has finished this prompt."), code="prompt_not_ready")
    if winner is not None and statuses[arms[winner].batch_id] != GenerationStatus.SUCCEEDED:
        raise Conflict(
            _("That configuration has no image for this prompt; pick another or a tie."), code="winner_failed"
        )
    vote, _created = ComparisonVote.objects.update_or_create(
        comparison=comparison,
        prompt_index=prompt_index,
        defaults={"winner": arms[winner] if winner is not None else None, "voted_at": timezone.now()},
    )
    return vote


def comparison_cancel(*, comparison: Comparison) -> int:
    """Cancel every arm's batch that is still queued, running or paused (through the batch service);
    returns how many were. Votes and finished images stay."""
    cancelled = 0
    for arm in comparison.arms.select_related("batch"):
        if not arm.batch.is_active:
            continue
        try:
            services.batch_cancel(batch=arm.batch)
        except Conflict:  # it ended meanwhile
            continue
        cancelled += 1
    return cancelled


# ----------------------------------------------------------------------------------------------- reads


def comparison_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Comparison]:
    return (
        Comparison.objects.filter(owner_id=user.pk)
        .annotate(vote_count=Count("votes"))
        .prefetch_related("arms__batch")
        .order_by(*COMPARISON_ORDER)
    )


def comparison_page(*, user: AbstractBaseUser | AnonymousUser, cursor: str = "", size: int) -> KeysetPage[Comparison]:
    comparisons = comparison_list(user=user)
    total = Comparison.objects.filter(owner_id=user.pk).count
    return keyset_page(comparisons, ordering=COMPARISON_ORDER, cursor=cursor, size=size, total=total)


def comparison_get(*, user: AbstractBaseUser | AnonymousUser, comparison_id: uuid.UUID | str) -> Comparison:
    """The user's own comparison; another user's, or an unknown id, is the same 404."""
    try:
        return Comparison.objects.prefetch_related("arms__batch").get(pk=comparison_id, owner_id=user.pk)
    except (Comparison.DoesNotExist, ValidationError, ValueError):
        raise NotFound(_("No such comparison.")) from None


def comparison_of_batch(*, user: AbstractBaseUser | AnonymousUser, batch_id: uuid.UUID) -> Comparison:
    """The user's comparison that `batch_id` is a configuration of (what an Idempotency-Key recorded)."""
    arm = ComparisonArm.objects.filter(batch_id=batch_id, comparison__owner_id=user.pk).first()
    if arm is None:
        raise NotFound(_("No such comparison."))
    return comparison_get(user=user, comparison_id=arm.comparison_id)


def comparison_is_active(comparison: Comparison) -> bool:
    return any(arm.batch.is_active for arm in comparison.arms.all())


@dataclass(frozen=True)
class Cell:
    arm: ComparisonArm
    generation: Generation | None


@dataclass(frozen=True)
class PromptRow:
    index: int
    prompt: str
    seed: int
    cells: list[Cell]
    votable: bool
    voted: bool
    winner: int | None  # the winning arm's index; None for a tie or no vote (see `voted`)


def comparison_rows(comparison: Comparison) -> list[PromptRow]:
    """Prompts × arms with each arm's image for that prompt and the vote (bounded: ≤ 50 × 4 images)."""
    arms = list(comparison.arms.all())
    by_cell = {(g.batch_id, g.position): g for g in Generation.objects.filter(batch_id__in=[a.batch_id for a in arms])}
    votes = {v.prompt_index: v for v in comparison.votes.select_related("winner")}
    rows = []
    for index, prompt in enumerate(comparison.prompts):
        cells = [Cell(arm=arm, generation=by_cell.get((arm.batch_id, index))) for arm in arms]
        vote = votes.get(index)
        rows.append(
            PromptRow(
                index=index,
                prompt=prompt,
                seed=comparison.seeds[index] if index < len(comparison.seeds) else 0,
                cells=cells,
                votable=all(c.generation is not None and c.generation.is_finished for c in cells),
                voted=vote is not None,
                winner=vote.winner.index if vote is not None and vote.winner is not None else None,
            )
        )
    return rows


def wilson_interval(successes: float, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (successes may be fractional: a tie is half a win)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class WinRate:
    votes: int
    wins: int
    ties: int
    rate: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, *, votes: int, wins: int, ties: int) -> WinRate:
        if votes == 0:
            return cls(votes=0, wins=wins, ties=ties, rate=None, low=None, high=None)
        score = wins + ties / 2
        low, high = wilson_interval(score, votes)
        return cls(votes=votes, wins=wins, ties=ties, rate=score / votes, low=low, high=high)

    @property
    def percents(self) -> tuple[int, int, int] | None:
        """Rate, low and high as whole percents, for pages."""
        if self.rate is None or self.low is None or self.high is None:
            return None
        return (round(self.rate * 100), round(self.low * 100), round(self.high * 100))


@dataclass(frozen=True)
class ImageFigures:
    done: int
    failed: int
    total: int
    cost_usd: Decimal
    latency_p50_ms: int | None
    latency_p95_ms: int | None

    @property
    def failure_rate(self) -> float | None:
        finished = self.done + self.failed
        return self.failed / finished if finished else None

    @property
    def failure_percent(self) -> float | None:
        rate = self.failure_rate
        return round(rate * 100, 1) if rate is not None else None

    @property
    def cost_per_image_usd(self) -> Decimal | None:
        if not self.done:
            return None
        return (Decimal(self.cost_usd) / self.done).quantize(Decimal("0.00001"))


@dataclass(frozen=True)
class ArmSummary:
    arm: ComparisonArm
    wins: WinRate
    images: ImageFigures


def latency_percentiles(generations: QuerySet[Generation]) -> tuple[int | None, int | None]:
    """Nearest-rank p50 and p95 of `provider_latency_ms` of the succeeded images: a count and two offset reads."""
    timed = generations.filter(status=GenerationStatus.SUCCEEDED, provider_latency_ms__isnull=False)
    count = timed.count()
    if not count:
        return (None, None)
    ordered = timed.order_by("provider_latency_ms").values_list("provider_latency_ms", flat=True)
    p50, p95 = (ordered[max(math.ceil(share * count) - 1, 0)] for share in (0.5, 0.95))
    return (p50, p95)


def comparison_summary(comparison: Comparison) -> list[ArmSummary]:
    """Per arm: win rate with its 95 % interval, images done/failed/total, cost per image, latency p50/p95."""
    arms = list(comparison.arms.all())
    picks: dict[int | None, int] = {
        row["winner"]: row["n"] for row in comparison.votes.values("winner").annotate(n=Count("id")).order_by()
    }
    votes = sum(picks.values())
    ties = picks.get(None, 0)
    summaries = []
    for arm in arms:
        p50, p95 = latency_percentiles(Generation.objects.filter(batch_id=arm.batch_id))
        images = ImageFigures(
            done=arm.batch.completed,
            failed=arm.batch.failed,
            total=arm.batch.total,
            cost_usd=arm.batch.cost_usd,
            latency_p50_ms=p50,
            latency_p95_ms=p95,
        )
        rate = WinRate.of(votes=votes, wins=picks.get(arm.pk, 0), ties=ties)
        summaries.append(ArmSummary(arm=arm, wins=rate, images=images))
    return summaries


@dataclass(frozen=True)
class ConfigurationSummary:
    """One configuration (provider, model, size) across every user's comparisons, for staff."""

    provider: str
    model: str
    width: int
    height: int
    comparisons: int
    wins: WinRate
    images: ImageFigures

    def as_dict(self) -> dict[str, Any]:
        cost = self.images.cost_per_image_usd
        return {
            "provider": self.provider,
            "model": self.model,
            "size": f"{self.width}x{self.height}",
            "comparisons": self.comparisons,
            "votes": self.wins.votes,
            "wins": self.wins.wins,
            "ties": self.wins.ties,
            "win_rate": self.wins.rate,
            "win_rate_low": self.wins.low,
            "win_rate_high": self.wins.high,
            "cost_per_image_usd": float(cost) if cost is not None else None,
            "latency_p50_ms": self.images.latency_p50_ms,
            "latency_p95_ms": self.images.latency_p95_ms,
            "failure_rate": self.images.failure_rate,
            "images_done": self.images.done,
            "images_total": self.images.total,
        }


CONFIGURATION = ("provider", "model", "width", "height")


def configuration_summaries(*, limit: int = CONFIGURATION_ROWS) -> list[ConfigurationSummary]:
    """Every user's comparisons grouped by configuration, most compared first: three grouped queries
    plus a count and two offset reads per configuration for the latency percentiles."""
    groups = list(
        ComparisonArm.objects.values(*CONFIGURATION)
        .annotate(
            comparisons=Count("comparison", distinct=True),
            done=Sum("batch__completed"),
            failed=Sum("batch__failed"),
            total=Sum("batch__total"),
            cost=Sum("batch__cost_usd"),
        )
        .order_by("-comparisons", *CONFIGURATION)[:limit]
    )
    # Every vote of a comparison is a contest for each of its arms; a tie is one for each of them.
    contests = {
        _key(row): row
        for row in ComparisonArm.objects.values(*CONFIGURATION).annotate(
            votes=Count("comparison__votes"), ties=Count("comparison__votes", filter=Q(comparison__votes__winner=None))
        )
    }
    wins = {
        tuple(row[:4]): row[4]
        for row in ComparisonVote.objects.exclude(winner=None)
        .values_list(*(f"winner__{name}" for name in CONFIGURATION))
        .annotate(n=Count("id"))
    }
    return [_configuration(group, contests.get(_key(group), {}), wins.get(_key(group), 0)) for group in groups]


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in CONFIGURATION)


def _configuration(group: dict[str, Any], contests: dict[str, Any], wins: int) -> ConfigurationSummary:
    arms = ComparisonArm.objects.filter(**{name: group[name] for name in CONFIGURATION})
    p50, p95 = latency_percentiles(Generation.objects.filter(batch__comparison_arm__in=arms))
    images = ImageFigures(
        done=group["done"] or 0,
        failed=group["failed"] or 0,
        total=group["total"] or 0,
        cost_usd=group["cost"] or Decimal(0),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
    )
    rate = WinRate.of(votes=contests.get("votes", 0), wins=wins, ties=contests.get("ties", 0))
    return ConfigurationSummary(
        comparisons=group["comparisons"], wins=rate, images=images, **{n: group[n] for n in CONFIGURATION}
    )
