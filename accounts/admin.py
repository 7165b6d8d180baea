"""Admin for users (with quota overrides), API tokens and the read-only audit log; changes are audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import audit_record
from accounts.models import ApiToken, AuditEvent, Authenticator, UserQuota
from accounts.services import token_revoke, tokens_revoke_all, user_deactivate
from accounts.two_factor import two_factor_disable

QUOTA_FIELDS = ["daily_images", "max_images_per_batch", "max_active_batches"]
WATCHED_USER_FIELDS = ["is_active", "is_staff", "is_superuser", "email", "groups", "user_permissions"]

# Device secrets are never shown in the admin; staff reset a user's two-factor with an action instead.
for device_model in (Authenticator, TOTPDevice, StaticDevice):
    if admin.site.is_registered(device_model):
        admin.site.unregister(device_model)


class UserQuotaInline(admin.StackedInline):
    model = UserQuota
    fields = tuple(QUOTA_FIELDS)
    can_delete = False
    verbose_name_plural = _("quota overrides")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "event", "username", "ip_address", "user_agent"]
    list_filter = ["event", "created_at"]
    search_fields = ["event", "username", "ip_address"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "event", "user", "username", "ip_address", "user_agent", "details"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [UserQuotaInline]
    list_display = ["username", "email", "is_active", "is_staff", "date_joined", "last_login"]
    actions = ["deactivate", "reset_two_factor"]

    @admin.action(description=_("Deactivate selected users"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [user for user in queryset if user.pk != request.user.pk]
        for user in users:
            user_deactivate(user=user, actor=request.user, request=request)
        if len(users) < queryset.count():
            self.message_user(request, _("You cannot deactivate yourself."), messages.WARNING)
        self.message_user(request, _("%(count)d users deactivated.") % {"count": len(users)})

    @admin.action(description=_("Turn off two-factor for selected users (lost phone)"))
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            two_factor_disable(user=user, actor=request.user, request=request)  # type: ignore[arg-type]
        self.message_user(request, _("Two-factor is off for %(count)d users.") % {"count": queryset.count()})

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = User.objects.get(pk=id)
            tokens_revoke_all(user=user, reason="password_set_by_admin", request=request)
        return response

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        changed = [name for name in form.changed_data if name in WATCHED_USER_FIELDS or name == "password"]
        if not change:
            audit_record(event="admin.user_created", user=request.user, request=request, target=obj.username)
        elif changed:
            audit_record(
                event="admin.user_changed", user=request.user, request=request, target=obj.username, fields=changed
            )

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        for quota_form in formset.forms:
            if quota_form.has_changed() and isinstance(quota_form.instance, UserQuota):
                values = {name: getattr(quota_form.instance, name) for name in QUOTA_FIELDS}
                target = form.instance.get_username()
                audit_record(event="quota.changed", user=request.user, request=request, target=target, **values)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff can see and revoke tokens, never read a secret."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["revoked_at", "created_at"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["id", "user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    exclude = ["secret_hash"]
    actions = ["revoke"]

    @admin.action(description=_("Revoke selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.select_related("user"):
            token_revoke(token=token, actor=request.user, request=request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
