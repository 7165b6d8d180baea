"""Admin for monitoring: alert states and history, and the stored samples, read-only."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from monitoring.models import AlertEvent, AlertState, SystemSample


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = ["key", "firing", "since", "checked_at", "message"]
    list_filter = ["firing"]


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "key", "kind", "message", "delivered"]
    list_filter = ["kind", "key"]
    date_hierarchy = "created_at"


@admin.register(SystemSample)
class SystemSampleAdmin(ReadOnlyAdmin):
    list_display = ["taken_at", "cpu_percent", "memory_percent", "load_1", "queued", "running", "workers_alive"]
    date_hierarchy = "taken_at"
