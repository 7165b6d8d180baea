"""Admin for batches, generations, comparisons and renditions, with actions that call the services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.audit import audit_record
from generation import comparisons, services
from generation.models import (
    Batch,
    Comparison,
    ComparisonArm,
    Generation,
    OutputJob,
    Rendition,
    WebhookDelivery,
    WorkerNode,
)
from imagegen.errors import ApplicationError


class GenerationInline(admin.TabularInline):
    model = Generation
    fields = ("position", "prompt", "status", "seed", "attempts", "error_code", "provider_latency_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    max_num = 0


def _apply(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Batch], action: object) -> None:
    done = 0
    for batch in queryset:
        try:
            action(batch=batch)  # type: ignore[operator]
            done += 1
            name = getattr(action, "__name__", "")
            audit_record(
                event="admin.batch_action", user=request.user, request=request, action=name, batch=str(batch.pk)
            )
        except ApplicationError as error:
            modeladmin.message_user(request, f"{batch}: {error.message}", messages.WARNING)
    modeladmin.message_user(request, _("%(count)d batches updated.") % {"count": done})


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "owner",
        "provider",
        "model",
        "status",
        "priority",
        "total",
        "completed",
        "failed",
        "source",
        "created_at",
    ]
    list_filter = ["status", "priority", "provider", "source", "created_at"]
    search_fields = ["name", "owner__username", "id"]
    readonly_fields = [f.name for f in Batch._meta.fields]
    date_hierarchy = "created_at"
    inlines = [GenerationInline]
    actions = ["cancel", "pause", "resume", "retry_failed"]

    @admin.action(description=_("Pause selected batches"))
    def pause(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        _apply(self, request, queryset, services.batch_pause)

    @admin.action(description=_("Resume selected batches"))
    def resume(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        _apply(self, request, queryset, services.batch_resume)

    @admin.action(description=_("Cancel selected batches"))
    def cancel(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        _apply(self, request, queryset, services.batch_cancel)

    @admin.action(description=_("Retry failed images of selected batches"))
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        _apply(self, request, queryset, services.batch_retry_failed)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = [
        "prompt", "batch", "status", "seed", "attempts", "worker", "error_code", "provider_latency_ms", "finished_at",
    ]  # fmt: skip
    list_filter = ["status", "error_code", "batch__provider", "cached"]
    search_fields = ["prompt", "batch__name", "id"]
    readonly_fields = [f.name for f in Generation._meta.fields]
    list_select_related = ["batch"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(WorkerNode)
class WorkerNodeAdmin(admin.ModelAdmin):
    """The running `qcluster` nodes and what their own checks found (read only: they write themselves)."""

    list_display = ["id", "host", "pid", "workers", "started_at", "heartbeat_at", "state"]
    readonly_fields = [f.name for f in WorkerNode._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Read-only: deliveries change only through the webhook sender (resend is on the batch page and the API)."""

    list_display = ("id", "batch", "event", "status", "attempts", "response_code", "created_at", "delivered_at")
    list_filter = ("status", "event")
    search_fields = ("=id", "=batch__id", "url")
    list_select_related = ("batch",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the services: staff look, search and follow links."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ComparisonArmInline(admin.TabularInline):
    model = ComparisonArm
    fields = ("index", "label", "provider", "model", "width", "height", "batch")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Comparison)
class ComparisonAdmin(ReadOnlyAdmin):
    """Comparisons with their configurations; cancelling one cancels its batches through the services."""

    list_display = ("name", "owner", "arms_count", "prompts_count", "created_at")
    search_fields = ("name", "owner__username", "=id")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    inlines = [ComparisonArmInline]
    actions = ["cancel"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Comparison]:
        return super().get_queryset(request).annotate(arms_total=Count("arms"))

    @admin.display(description=_("configurations"), ordering="arms_total")
    def arms_count(self, comparison: Comparison) -> int:
        return int(getattr(comparison, "arms_total", 0))

    @admin.display(description=_("prompts"))
    def prompts_count(self, comparison: Comparison) -> int:
        return len(comparison.prompts)

    @admin.action(description=_("Cancel selected comparisons"))
    def cancel(self, request: HttpRequest, queryset: QuerySet[Comparison]) -> None:
        cancelled = 0
        for comparison in queryset:
            cancelled += comparisons.comparison_cancel(comparison=comparison)
            audit_record(
                event="admin.comparison_cancel", user=request.user, request=request, comparison=str(comparison.pk)
            )
        self.message_user(request, _("%(count)d batches cancelled.") % {"count": cancelled})


@admin.register(Rendition)
class RenditionAdmin(ReadOnlyAdmin):
    """Post-processed files of images (generation/output.py); the original stays on the image."""

    list_display = ("generation", "format", "width", "height", "bytes", "created_at")
    list_filter = ("format",)
    search_fields = ("=generation__id", "=generation__batch__id", "settings_hash")
    list_select_related = ("generation",)
    readonly_fields = [f.name for f in Rendition._meta.fields]


@admin.register(OutputJob)
class OutputJobAdmin(ReadOnlyAdmin):
    """Re-processing a batch with other output settings: its renditions show how far it got."""

    list_display = ("batch", "settings_hash", "total", "failures", "created_at")
    search_fields = ("=batch__id", "batch__name", "settings_hash")
    list_select_related = ("batch",)
    readonly_fields = [f.name for f in OutputJob._meta.fields]

    @admin.display(description=_("failed"))
    def failures(self, job: OutputJob) -> int:
        return len(job.failed_ids or [])
