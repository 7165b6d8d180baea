"""A/B comparison REST endpoints: create, list, read (cells, votes, summary) and vote."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import make_once
from generation import comparisons
from generation.api import PAGING, keyset_page_schema, keyset_response, read_page
from generation.comparisons import ArmRequest, ArmSummary, Comparison, PromptRow
from generation.models import BatchSource
from generation.serializers import object_url
from generation.services import MAX_SEED
from imagegen import fields

# ------------------------------------------------------------------------------------------------ input


class ComparisonArmInputSerializer(serializers.Serializer):
    provider = fields.CharField(max_length=50, required=False, default="", allow_blank=True)
    model = fields.CharField(max_length=100, required=False, default="", allow_blank=True)
    width = fields.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    height = fields.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    options = serializers.DictField(required=False, default=dict, help_text="The model's own settings.")
    label = fields.CharField(max_length=100, required=False, default="", allow_blank=True)  # type: ignore[assignment]


class ComparisonCreateSerializer(serializers.Serializer):
    name = fields.CharField(max_length=200, required=False, allow_blank=True, default="")
    prompts = serializers.ListField(
        child=fields.CharField(allow_blank=True, trim_whitespace=True, max_length=20000),
        allow_empty=False,
        max_length=comparisons.MAX_COMPARISON_PROMPTS,
        help_text="One prompt per item (no template expansion); every configuration renders each of them.",
    )
    arms = ComparisonArmInputSerializer(  # type: ignore[call-arg]
        many=True, min_length=comparisons.MIN_ARMS, max_length=comparisons.MAX_ARMS
    )
    seed = fields.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        max_value=MAX_SEED,
        help_text="Seed for every prompt; without one, each prompt gets its own random seed, shared by all arms.",
    )


class ComparisonVoteSerializer(serializers.Serializer):
    prompt_index = fields.IntegerField(min_value=0)
    winner = fields.IntegerField(
        allow_null=True, min_value=0, max_value=comparisons.MAX_ARMS - 1, help_text="An arm index; null for a tie."
    )


# ----------------------------------------------------------------------------------------------- output


class ComparisonArmSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]
    provider = serializers.CharField()
    model = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    options = serializers.DictField()
    batch_id = serializers.UUIDField()
    status = serializers.CharField(help_text="The arm's batch status.")


class ComparisonCellSerializer(serializers.Serializer):
    arm = serializers.IntegerField()
    generation_id = serializers.UUIDField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    image_url = serializers.URLField(allow_null=True)
    thumbnail_url = serializers.URLField(allow_null=True)
    error_code = serializers.CharField(allow_null=True)


class ComparisonRowSerializer(serializers.Serializer):
    prompt_index = serializers.IntegerField()
    prompt = serializers.CharField()
    seed = serializers.IntegerField()
    votable = serializers.BooleanField(help_text="Every arm has finished this prompt.")
    voted = serializers.BooleanField()
    winner = serializers.IntegerField(allow_null=True, help_text="Arm index; null for a tie or no vote.")
    cells = ComparisonCellSerializer(many=True)


class ComparisonSummarySerializer(serializers.Serializer):
    arm = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]
    votes = serializers.IntegerField()
    wins = serializers.IntegerField()
    ties = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True, help_text="(wins + ties / 2) / votes.")
    win_rate_low = serializers.FloatField(allow_null=True, help_text="95 % Wilson score interval, lower bound.")
    win_rate_high = serializers.FloatField(allow_null=True, help_text="95 % Wilson score interval, upper bound.")
    cost_per_image_usd = serializers.DecimalField(max_digits=12, decimal_places=5, allow_null=True)
    latency_p50_ms = serializers.IntegerField(allow_null=True)
    latency_p95_ms = serializers.IntegerField(allow_null=True)
    failure_rate = serializers.FloatField(allow_null=True, help_text="failed / (succeeded + failed).")
    images_done = serializers.IntegerField()
    images_failed = serializers.IntegerField()
    images_total = serializers.IntegerField()


class ComparisonListItemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.CharField(help_text="`running` while any arm's batch is active, then `finished`.")
    prompts = serializers.IntegerField(help_text="Number of prompts.")
    votes = serializers.IntegerField()
    arms = ComparisonArmSerializer(many=True)
    created_at = serializers.DateTimeField()
    url = serializers.URLField()


class ComparisonSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.CharField(help_text="`running` while any arm's batch is active, then `finished`.")
    created_at = serializers.DateTimeField()
    arms = ComparisonArmSerializer(many=True)
    rows = ComparisonRowSerializer(many=True)
    summary = ComparisonSummarySerializer(many=True)
    urls = serializers.DictField(child=serializers.URLField())


def arm_data(arm: Any) -> dict[str, Any]:
    return {
        "index": arm.index,
        "label": arm.label,
        "provider": arm.provider,
        "model": arm.model,
        "width": arm.width,
        "height": arm.height,
        "options": arm.options,
        "batch_id": arm.batch_id,
        "status": arm.batch.status,
    }


def _status(comparison: Comparison) -> str:
    return "running" if comparisons.comparison_is_active(comparison) else "finished"


def row_data(row: PromptRow, context: dict[str, Any]) -> dict[str, Any]:
    cells = []
    for cell in row.cells:
        g = cell.generation
        cells.append(
            {
                "arm": cell.arm.index,
                "generation_id": g.pk if g else None,
                "status": g.status if g else None,
                "image_url": object_url(context, "api-generation-image", g.pk) if g and g.image else None,
                "thumbnail_url": object_url(context, "api-generation-thumbnail", g.pk) if g and g.thumbnail else None,
                "error_code": (g.error_code or None) if g else None,
            }
        )
    return {
        "prompt_index": row.index,
        "prompt": row.prompt,
        "seed": row.seed,
        "votable": row.votable,
        "voted": row.voted,
        "winner": row.winner,
        "cells": cells,
    }


def summary_data(summary: ArmSummary) -> dict[str, Any]:
    cost = summary.images.cost_per_image_usd
    return {
        "arm": summary.arm.index,
        "label": summary.arm.label,
        "votes": summary.wins.votes,
        "wins": summary.wins.wins,
        "ties": summary.wins.ties,
        "win_rate": summary.wins.rate,
        "win_rate_low": summary.wins.low,
        "win_rate_high": summary.wins.high,
        "cost_per_image_usd": str(cost) if cost is not None else None,
        "latency_p50_ms": summary.images.latency_p50_ms,
        "latency_p95_ms": summary.images.latency_p95_ms,
        "failure_rate": summary.images.failure_rate,
        "images_done": summary.images.done,
        "images_failed": summary.images.failed,
        "images_total": summary.images.total,
    }


def comparison_data(comparison: Comparison, request: Request) -> dict[str, Any]:
    """The detail document: arms with their batches, prompts × arms cells, votes and the summary."""
    context: dict[str, Any] = {"request": request}
    return {
        "id": comparison.pk,
        "name": comparison.name,
        "status": _status(comparison),
        "created_at": comparison.created_at,
        "arms": [arm_data(arm) for arm in comparison.arms.all()],
        "rows": [row_data(row, context) for row in comparisons.comparison_rows(comparison)],
        "summary": [summary_data(s) for s in comparisons.comparison_summary(comparison)],
        "urls": {
            "self": object_url(context, "api-comparison-detail", comparison.pk),
            "votes": object_url(context, "api-comparison-votes", comparison.pk),
            "portal": object_url(context, "comparisons:comparison_detail", comparison.pk),
        },
    }


def list_item_data(comparison: Comparison, context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": comparison.pk,
        "name": comparison.name,
        "status": _status(comparison),
        "prompts": len(comparison.prompts),
        "votes": getattr(comparison, "vote_count", 0),
        "arms": [arm_data(arm) for arm in comparison.arms.all()],
        "created_at": comparison.created_at,
        "url": object_url(context, "api-comparison-detail", comparison.pk),
    }


class ComparisonListItem(serializers.BaseSerializer):
    """Renders list items from `list_item_data` (documented by ComparisonListItemSerializer)."""

    def to_representation(self, instance: Comparison) -> dict[str, Any]:
        data = list_item_data(instance, self.context)
        return dict(ComparisonListItemSerializer(data).data)


class ComparisonListCreateView(GenericAPIView):
    serializer_class = ComparisonListItemSerializer
    pagination_class = None  # keyset pages: see keyset_response

    @extend_schema(
        operation_id="v1_comparisons_list",
        parameters=PAGING,
        responses=keyset_page_schema("ComparisonPage", ComparisonListItemSerializer),
    )
    def get(self, request: Request) -> Response:
        page = read_page(request, comparisons.comparison_page, user=request.user)
        return keyset_response(request, page, ComparisonListItem)

    @extend_schema(
        request=ComparisonCreateSerializer,
        responses={201: ComparisonSerializer},
        description="Render the same prompts (and seeds) with 2–4 configurations, one batch each.",
    )
    def post(self, request: Request) -> Response:
        data = ComparisonCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields_ = data.validated_data
        spec = comparisons.check_comparison_request(
            name=fields_["name"],
            prompts=fields_["prompts"],
            arms=[ArmRequest(**arm) for arm in fields_["arms"]],
            seed=fields_["seed"],
            user_id=request.user.pk,
        )
        made = make_once(  # a retry with the create's Idempotency-Key answers the comparison it made
            request,
            make=lambda: comparisons.comparison_create(
                owner=cast(User, request.user), spec=spec, source=BatchSource.API
            ),
            batch_of=lambda made: made.arms.order_by("index").values_list("batch_id", flat=True)[0],
            resume=lambda batch_id: comparisons.comparison_of_batch(user=request.user, batch_id=batch_id),
        )
        comparison = comparisons.comparison_get(user=request.user, comparison_id=made.pk)
        body = ComparisonSerializer(comparison_data(comparison, request)).data
        return Response(body, status=status.HTTP_201_CREATED)


class ComparisonDetailView(APIView):
    @extend_schema(responses=ComparisonSerializer)
    def get(self, request: Request, comparison_id: uuid.UUID) -> Response:
        comparison = comparisons.comparison_get(user=request.user, comparison_id=comparison_id)
        return Response(ComparisonSerializer(comparison_data(comparison, request)).data)


class ComparisonCancelView(APIView):
    @extend_schema(
        request=None,
        responses=ComparisonSerializer,
        description="Cancel every configuration's batch that is still queued, running or paused; what is made "
        "and the votes stay. Cancelling an ended comparison changes nothing.",
    )
    def post(self, request: Request, comparison_id: uuid.UUID) -> Response:
        comparison = comparisons.comparison_get(user=request.user, comparison_id=comparison_id)
        comparisons.comparison_cancel(comparison=comparison)
        comparison = comparisons.comparison_get(user=request.user, comparison_id=comparison_id)
        return Response(ComparisonSerializer(comparison_data(comparison, request)).data)


class ComparisonVoteView(APIView):
    @extend_schema(
        request=ComparisonVoteSerializer,
        responses=ComparisonSerializer,
        description="Pick the winner of one prompt (an arm index, or null for a tie); voting again changes it. "
        "409 `prompt_not_ready` until every arm has finished the prompt; 409 `winner_failed` for an arm "
        "without an image.",
    )
    def post(self, request: Request, comparison_id: uuid.UUID) -> Response:
        comparison = comparisons.comparison_get(user=request.user, comparison_id=comparison_id)
        data = ComparisonVoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        comparisons.comparison_vote(comparison=comparison, **data.validated_data)
        return Response(ComparisonSerializer(comparison_data(comparison, request)).data)
