"""Shapes of the generation API: batch requests in, batches, generations and providers out."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from generation.imports import check_items, refuse_prompts_and_items
from generation.keys import key_providers
from generation.limits import limit_for
from generation.models import Batch, BatchPriority, Generation, ProviderKey, WebhookDelivery
from generation.prompts import check_template_budget
from generation.scheduler import QueueEstimate, estimates
from generation.serializers_output import OutputField
from imagegen import fields
from imagegen.representation import CompiledRepresentation
from imagegen.routes import url_maker

PRIORITY_NAMES: dict[str, int] = {"low": BatchPriority.LOW, "normal": BatchPriority.NORMAL, "high": BatchPriority.HIGH}
PRIORITY_LABELS: dict[int, str] = {value: name for name, value in PRIORITY_NAMES.items()}


@extend_schema_field(
    {
        "type": "array",
        "nullable": True,
        "maxItems": settings.MAX_PROMPTS_PER_BATCH,
        "items": {
            "type": "object",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string", "minLength": 1},
                "negative_prompt": {"type": "string"},
                "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer", "minimum": 1},
                "images": {"type": "integer", "minimum": 1, "maximum": settings.MAX_IMAGES_PER_PROMPT},
            },
            "additionalProperties": {"type": ["string", "number"]},
        },
    }
)
class ImportItemsField(serializers.JSONField):
    """Rows checked by generation.imports, which names the row and field of every problem."""

    def to_internal_value(self, data: Any) -> Any:
        return check_items(super().to_internal_value(data))


class BatchCreateSerializer(serializers.Serializer):
    name = fields.CharField(max_length=200, required=False, allow_blank=True, default="")
    provider = fields.CharField(max_length=50, required=False, default="")
    model = fields.CharField(max_length=100, required=False, allow_blank=True, default="")
    prompts = serializers.ListField(
        child=fields.CharField(allow_blank=True, trim_whitespace=True, max_length=20000),
        required=False,
        default=list,
        max_length=settings.MAX_PROMPTS_PER_BATCH,
        help_text="One prompt per item. With `template`, `{a|b}` alternatives expand into every combination. "
        "Give `prompts` or `items`.",
    )
    items = ImportItemsField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Imported rows, each with its own settings (unset ones take the batch's): "
        "`prompt`, `negative_prompt`, `seed`, `width`, `height`, `images`. Other keys are variables: `{key}` in "
        "the prompt is replaced by the row's value. A bad row refuses the whole request "
        "(`invalid_import`, `details.rows` lists `{row, field, message}`).",
    )
    template = fields.BooleanField(required=False, default=False)
    negative_prompt = fields.CharField(required=False, allow_blank=True, default="", max_length=4000)
    images_per_prompt = fields.IntegerField(required=False, default=1, min_value=1)
    width = fields.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    height = fields.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    seed = fields.IntegerField(required=False, allow_null=True, default=None, min_value=0)
    options = serializers.DictField(
        required=False,
        default=dict,
        help_text='The model\'s own settings, e.g. {"quality": "hd"}; see `capabilities.options` in /providers/.',
    )
    fallbacks = serializers.ListField(
        child=fields.CharField(max_length=200),
        required=False,
        default=list,
        max_length=3,
        help_text="Providers to move to, in order, when a generation keeps failing with transient errors: "
        "`provider` or `provider:model`.",
    )
    output = OutputField(required=False, allow_null=True, default=None)
    cache = fields.BooleanField(
        required=False,
        default=True,
        help_text="Reuse an identical image you already have (same provider, model, prompts, size, options and "
        "explicit seed) instead of a paid call; `false` renders every image afresh. Without a seed nothing is cached.",
    )
    priority = serializers.ChoiceField(
        choices=list(PRIORITY_NAMES),
        required=False,
        default="normal",
        help_text="Order of work among your own batches (users share the workers fairly whatever the priority). "
        "`high` is for staff and users given the permission.",
    )

    webhook_url = fields.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Called with a signed `batch.finished` event when the batch ends (see Webhooks). https only, "
        "public addresses only (unless the operator allows the host).",
    )

    def validate_priority(self, value: str) -> int:
        return PRIORITY_NAMES[value]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("prompts") and not attrs.get("items") and not attrs.get("file"):
            raise serializers.ValidationError({"prompts": [gettext("Enter at least one prompt.")]})
        if attrs.get("prompts") and attrs.get("items"):
            refuse_prompts_and_items()
        return attrs

    def to_internal_value(self, data: Any) -> Any:
        # The template budget is checked on the raw body, before each prompt is validated
        # character by character: a 2.5 MB template request costs a few milliseconds to refuse.
        if isinstance(data, dict) and data.get("template") is True and isinstance(data.get("prompts"), list):
            check_template_budget([p for p in data["prompts"] if isinstance(p, str)])
        return super().to_internal_value(data)


class BatchImportSerializer(BatchCreateSerializer):
    """The same request as multipart form data, with the prompts in an uploaded `file`."""

    file = serializers.FileField(
        required=False,
        help_text="A .txt (one prompt per line), .csv (header row with a `prompt` column), .json (array of "
        "items) or .jsonl file, UTF-8 with or without BOM, up to 2 MB.",
    )


class BatchEstimateSerializer(serializers.Serializer):
    prompts = serializers.IntegerField(help_text="Prompts after template expansion.")
    images = serializers.IntegerField()
    estimated_cost_usd = serializers.DecimalField(
        max_digits=12, decimal_places=5, allow_null=True, help_text="Null when a price is unknown."
    )
    quota = inline_serializer(
        name="EstimateQuota",
        fields={
            "images_left_today": serializers.IntegerField(),
            "images_per_day": serializers.IntegerField(),
            "images_per_batch": serializers.IntegerField(),
            "active_batches_left": serializers.IntegerField(),
            "fits": serializers.BooleanField(help_text="Whether the quota allows this batch now."),
        },
    )


class SelectionDownloadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.UUIDField(), allow_empty=False, max_length=1000, help_text="Your images, at most 1000."
    )


class BatchRetrySerializer(serializers.Serializer):
    include_permanent = fields.BooleanField(
        required=False,
        default=False,
        help_text="Also retry images that failed for good (content filtered, invalid request).",
    )


def object_url(context: Mapping[str, Any], name: str, pk: uuid.UUID) -> str:
    """The absolute URL of a named route for one object: resolved once per response, not once per row."""
    makers: dict[str, Callable[[uuid.UUID], str]] = cast(dict[str, Any], context).setdefault("_url_makers", {})
    if name not in makers:
        makers[name] = url_maker(name, context["request"])
    return makers[name](pk)


class BatchSerializer(CompiledRepresentation, serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    pending = serializers.SerializerMethodField()
    priority = serializers.SerializerMethodField()
    paused = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField(
        help_text="0 while its images are being made; n when n-1 of your batches go first; null when not queued."
    )
    eta_seconds = serializers.SerializerMethodField(
        help_text="Estimated seconds until the batch ends, from recent provider latency and your share of the "
        "workers; null when finished, paused or unknown."
    )
    cost_usd = serializers.SerializerMethodField(help_text="Estimated cost of the images made so far, in USD.")
    urls = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "id", "name", "status", "priority", "paused", "provider", "model", "parameters", "source",
            "total", "completed", "failed", "cancelled", "deleted", "pending", "progress", "cost_usd",
            "queue_position", "eta_seconds", "created_at", "started_at", "finished_at", "urls",
            "webhook_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_pending(self, batch: Batch) -> int:
        return batch.total - batch.finished

    @extend_schema_field(serializers.ChoiceField(choices=list(PRIORITY_NAMES)))
    def get_priority(self, batch: Batch) -> str:
        return PRIORITY_LABELS[batch.priority]

    def get_paused(self, batch: Batch) -> bool:
        return batch.paused_at is not None

    def _estimate(self, batch: Batch) -> QueueEstimate | None:
        known = self.context.get("estimates")
        if known is None or batch.pk not in known:
            # One batch on its own (detail, create): estimated once for both fields that show it.
            own: dict[uuid.UUID, QueueEstimate | None] = self.__dict__.setdefault("_own_estimates", {})
            if batch.pk not in own:
                own[batch.pk] = estimates([batch]).get(batch.pk)
            return own[batch.pk]
        return known.get(batch.pk)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_queue_position(self, batch: Batch) -> int | None:
        estimate = self._estimate(batch)
        return estimate.queue_position if estimate else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_eta_seconds(self, batch: Batch) -> int | None:
        estimate = self._estimate(batch)
        return estimate.eta_seconds if estimate else None

    @extend_schema_field(serializers.DecimalField(max_digits=12, decimal_places=5))
    def get_cost_usd(self, batch: Batch) -> str:
        return str(Decimal(batch.cost_usd).quantize(Decimal("0.00001")))

    def get_urls(self, batch: Batch) -> dict[str, str]:
        return {
            "self": object_url(self.context, "api-batch-detail", batch.pk),
            "generations": object_url(self.context, "api-batch-generations", batch.pk),
            "download": object_url(self.context, "api-batch-download", batch.pk),
            "portal": object_url(self.context, "generation:batch_detail", batch.pk),
            "reprocess": object_url(self.context, "api-batch-reprocess", batch.pk),
        }


class BatchCreatedSerializer(BatchSerializer):
    estimate = serializers.SerializerMethodField(help_text="What the batch is expected to make and cost.")

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "estimate"]
        read_only_fields = fields

    @extend_schema_field(BatchEstimateSerializer)
    def get_estimate(self, batch: Batch) -> dict[str, Any]:
        return cast(dict[str, Any], self.context.get("estimate", {}))  # the create view always passes it


class GenerationSerializer(CompiledRepresentation, serializers.ModelSerializer):
    batch_id = serializers.UUIDField(read_only=True)
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    retryable = serializers.SerializerMethodField()

    class Meta:
        model = Generation
        fields = [
            "id", "batch_id", "position", "status", "prompt", "negative_prompt", "seed", "width", "height",
            "provider", "model", "quality", "cost_usd", "attempts", "not_before", "provider_latency_ms", "content_hash",
            "retryable", "favourite", "cached",
            "image_url", "thumbnail_url", "error",
            "metadata", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def _file_url(self, generation: Generation, name: str) -> str | None:
        if not getattr(generation, name):
            return None
        return object_url(self.context, f"api-generation-{name}", generation.pk)

    def get_image_url(self, generation: Generation) -> str | None:
        return self._file_url(generation, "image")

    def get_thumbnail_url(self, generation: Generation) -> str | None:
        return self._file_url(generation, "thumbnail")

    def get_error(self, generation: Generation) -> dict[str, Any] | None:
        if not generation.error_code:
            return None
        return {
            "code": generation.error_code,
            "message": generation.error_message,
            "permanent": generation.error_permanent,
        }

    def get_retryable(self, generation: Generation) -> bool:
        """Whether `POST /generations/<id>/retry/` would accept it now."""
        return generation.status in ("failed", "cancelled")


class ModelInfoSerializer(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    capabilities = serializers.DictField()


class ProviderSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    description = serializers.CharField()
    offline = serializers.BooleanField()
    default = serializers.BooleanField()
    own_key = serializers.BooleanField(help_text="Your batches on this provider use the key you saved.")
    limits = serializers.DictField(help_text="Cluster-wide `concurrency` and `rpm` (0 = unlimited).")
    models = ModelInfoSerializer(many=True)


def provider_data(providers: dict[str, Any], *, own_keys: set[str] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "label": gettext(p.label),
            "description": gettext(p.description),
            "offline": p.offline,
            "default": p.name == settings.DEFAULT_PROVIDER,
            "own_key": p.name in (own_keys or set()),
            "limits": {kind: limit_for(p.name, kind) for kind in ("concurrency", "rpm")},
            "models": [{"id": m.id, "label": gettext(m.label), "capabilities": m.capabilities()} for m in p.models()],
        }
        for p in providers.values()
    ]


class UsageRowSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model = serializers.CharField()
    images = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=5)


class UsageSerializer(serializers.Serializer):
    images = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=5)
    by_model = UsageRowSerializer(many=True)


class ProviderKeySerializer(serializers.ModelSerializer):
    key = serializers.CharField(source="masked", read_only=True, help_text="Only the last four characters.")

    class Meta:
        model = ProviderKey
        fields = ["provider", "key", "created_at"]
        read_only_fields = fields


# The service checks both fields and answers unknown_provider / invalid_key; the schema states the
# same rules so clients (and schemathesis) know them up front.
@extend_schema_field({"type": "string", "enum": sorted(key_providers())})
class KeyProviderField(fields.CharField):
    pass


@extend_schema_field({"type": "string", "minLength": 8, "maxLength": 500, "pattern": r"^\S+$"})
class ApiKeyField(fields.CharField):
    pass


class ProviderKeyCreateSerializer(serializers.Serializer):
    provider = KeyProviderField(max_length=50, help_text="A provider that takes your own key.")
    api_key = ApiKeyField(max_length=500, write_only=True, trim_whitespace=True)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.UUIDField(
        source="id", read_only=True, help_text="The `webhook-id` header it is sent with."
    )
    response_code = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="HTTP status of the last answer; null when none came."
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "webhook_id", "event", "url", "status", "attempts", "response_code", "last_error",
            "next_attempt_at", "created_at", "last_attempt_at", "delivered_at", "payload",
        ]  # fmt: skip
        read_only_fields = fields
