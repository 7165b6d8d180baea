"""Portal pages of the accounts app: two-step login, profile, tokens, two-factor, passwords, sign-up."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any, cast

import django_otp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp.models import Device

from accounts import selectors, services, two_factor
from accounts.audit import audit_record, client_ip
from accounts.forms import ConfirmPasswordForm, LoginForm, OtpForm, ProfileForm, SignupForm, TokenCreateForm
from accounts.quotas import quota_usage
from accounts.ratelimits import rate_limit_enforce
from accounts.webhook_secrets import webhook_secret_shown
from imagegen.errors import ApplicationError, TooManyRequests

PENDING_LOGIN_KEY = "accounts_pending_login"
PENDING_LOGIN_SECONDS = 300


def _safe_next(request: HttpRequest, candidate: str) -> str:
    allowed = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    # Only a path on this site: a bare word such as "x" would be taken for a URL name.
    local_path = candidate.startswith("/") and not candidate.startswith("//")
    return candidate if local_path and allowed else reverse(settings.LOGIN_REDIRECT_URL)


@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    """Step one: username and password. With 2FA on, the session only remembers who is half-way in."""
    next_url = request.POST.get("next") or request.GET.get("next", "")
    if request.user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request, next_url))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            user = services.login_check_password(
                request=request,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                channel="portal",
            )
        except ApplicationError as error:
            form.add_error(None, error.message)
            status = error.status_code if isinstance(error, TooManyRequests) else 200
        else:
            if two_factor.two_factor_enabled(user=user):
                request.session[PENDING_LOGIN_KEY] = {"user": user.pk, "at": time.time(), "next": next_url}
                return redirect("accounts:login_verify")
            return _complete_login(request, user, None, next_url)
    context = {"form": form, "next": next_url, "allow_signup": settings.ALLOW_SIGNUP}
    return render(request, "accounts/login.html", context, status=status)


@never_cache
def login_verify(request: HttpRequest) -> HttpResponse:
    """Step two: a code from the authenticator or a recovery code."""
    user = _pending_user(request)
    if user is None:
        messages.error(request, _("Your sign-in expired. Enter your password again."))
        return redirect("accounts:login")
    form = OtpForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            device = two_factor.two_factor_verify(user=user, token=form.cleaned_data["token"])
        except TooManyRequests as error:
            form.add_error(None, error.message)
            status = error.status_code  # 429, or 503 when the rate-limit store is down
        else:
            if device is not None:
                pending = request.session.pop(PENDING_LOGIN_KEY)
                return _complete_login(request, user, device, pending.get("next", ""))
            audit_record(event="login.failed", user=user, request=request, channel="portal", reason="otp")
            form.add_error("token", _("That code is not right."))
    return render(request, "accounts/login_verify.html", {"form": form}, status=status)


def _pending_user(request: HttpRequest) -> User | None:
    pending = request.session.get(PENDING_LOGIN_KEY)
    if not pending or time.time() - pending.get("at", 0) > PENDING_LOGIN_SECONDS:
        request.session.pop(PENDING_LOGIN_KEY, None)
        return None
    return User.objects.filter(pk=pending["user"], is_active=True).first()


def _complete_login(request: HttpRequest, user: User, device: Device | None, next_url: str) -> HttpResponse:
    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if device is not None:
        django_otp.login(request, device)
    audit_record(event="login.succeeded", user=user, request=request, channel="portal", two_factor=device is not None)
    response = redirect(_safe_next(request, next_url))
    _remember_language(response, selectors.profile_language(user=user))
    return response


def _remember_language(response: HttpResponse, language: str) -> None:
    if language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        audit_record(event="logout", user=request.user, request=request)
    auth_logout(request)
    messages.success(request, _("You are signed out."))
    return redirect(settings.LOGOUT_REDIRECT_URL)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    form = ProfileForm(request.POST or None, initial={"language": selectors.profile_language(user=user)})
    if request.method == "POST" and form.is_valid():
        language = form.cleaned_data["language"]
        services.profile_update(user=user, language=language, request=request)
        messages.success(request, _("Your profile is saved."))
        response = redirect("accounts:profile")
        _remember_language(response, language)
        return response
    context = {
        "form": form,
        "summary": selectors.account_summary(user=user),
        "usage": quota_usage(user=user),
        "webhook_secret": webhook_secret_shown(user=user),
    }
    return render(request, "accounts/profile.html", context)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")
    form_class = PasswordChangeForm

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)  # also keeps this session signed in
        audit_record(event="password.changed", user=form.user, request=self.request)
        services.tokens_revoke_all(user=form.user, reason="password_changed", request=self.request)
        messages.success(self.request, _("Your password is changed."))
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Sends the reset link; limited per client IP so it cannot be used to flood inboxes."""

    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form: Any) -> HttpResponse:
        try:
            rate_limit_enforce(name="login_attempts", ident=f"reset:{client_ip(self.request)}")
        except TooManyRequests as error:
            form.add_error(None, error.message)
            return self.render_to_response(self.get_context_data(form=form), status=error.status_code)
        audit_record(event="password.reset_requested", request=self.request, email=form.cleaned_data["email"])
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        audit_record(event="password.reset", user=form.user, request=self.request)
        services.tokens_revoke_all(user=form.user, reason="password_reset", request=self.request)
        return response


@login_required
@never_cache
def tokens(request: HttpRequest) -> HttpResponse:
    """List the user's tokens and create one; a new secret is shown on this response only."""
    user = cast(User, request.user)
    form = TokenCreateForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["expires_in_days"]
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            issued = services.token_create(
                user=user, name=form.cleaned_data["name"], expires_at=expires_at, request=request
            )
        except ApplicationError as error:
            form.add_error("name", error.message)
        else:
            form = TokenCreateForm()
    context = {"form": form, "issued": issued, "tokens": selectors.token_list(user=user), "now": timezone.now()}
    response = render(request, "accounts/tokens.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: uuid.UUID) -> HttpResponse:
    token = selectors.token_get(user=request.user, token_id=token_id)
    services.token_revoke(token=token, actor=request.user, request=request)
    messages.success(request, _("Token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("accounts:tokens")


@login_required
def two_factor_status(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    context = {
        "enabled": two_factor.two_factor_enabled(user=user),
        "codes_left": two_factor.recovery_codes_left(user=user),
        # Two forms on one page ask for the password: distinct ids keep each label on its own input.
        "codes_form": ConfirmPasswordForm(user=user, auto_id="id_codes_%s"),
        "disable_form": ConfirmPasswordForm(user=user, auto_id="id_disable_%s"),
        "required": settings.REQUIRE_2FA_FOR_STAFF and user.is_staff,
    }
    return render(request, "accounts/two_factor.html", context)


@login_required
@never_cache
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Show a new authenticator's QR code, then switch 2FA on when a code from it is confirmed."""
    user = cast(User, request.user)
    form = OtpForm(request.POST or None)
    device = two_factor.totp_pending_device(user=user) if request.method == "POST" else None
    if request.method == "POST" and form.is_valid():
        try:
            confirmed, codes = two_factor.totp_setup_confirm(
                user=user, token=form.cleaned_data["token"], request=request
            )
        except ApplicationError as error:
            form.add_error("token", error.message)
        else:
            django_otp.login(request, confirmed)  # this session has now proven the second factor
            return _show_recovery_codes(request, codes, _("Two-factor authentication is on."))
    if device is None:
        device = two_factor.totp_setup_start(user=user)
    context = {
        "form": form,
        "qr": two_factor.totp_qr_data_uri(device),
        "secret": two_factor.totp_secret_text(device),
        "replacing": two_factor.two_factor_enabled(user=user),
    }
    return render(request, "accounts/two_factor_setup.html", context)


@login_required
@require_POST
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    form = ConfirmPasswordForm(request.POST, user=user)
    if not form.is_valid():
        messages.error(request, _password_error(form))
        return redirect("accounts:two_factor")
    two_factor.two_factor_disable(user=user, request=request)
    messages.success(request, _("Two-factor authentication is off."))
    return redirect("accounts:two_factor")


@login_required
@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    form = ConfirmPasswordForm(request.POST, user=user)
    if not two_factor.two_factor_enabled(user=user) or not form.is_valid():
        messages.error(request, _password_error(form) or _("Turn on two-factor first."))
        return redirect("accounts:two_factor")
    codes = two_factor.recovery_codes_regenerate(user=user, request=request)
    return _show_recovery_codes(request, codes, _("New recovery codes are ready; the old ones no longer work."))


def _password_error(form: ConfirmPasswordForm) -> str:
    return " ".join(str(error) for error in form.errors.get("password", []))


def _show_recovery_codes(request: HttpRequest, codes: list[str], headline: str) -> HttpResponse:
    response = render(request, "accounts/recovery_codes.html", {"codes": codes, "headline": headline})
    response["Cache-Control"] = "no-store"
    return response


@never_cache
def signup(request: HttpRequest) -> HttpResponseBase:
    if not settings.ALLOW_SIGNUP:
        raise Http404
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            rate_limit_enforce(name="login_attempts", ident=f"signup:{client_ip(request)}")
            user = services.user_signup(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                request=request,
            )
        except ApplicationError as error:
            form.add_error(None, error.message)
            status = error.status_code if isinstance(error, TooManyRequests) else 200
        else:
            return _complete_login(request, user, None, "")
    return render(request, "accounts/signup.html", {"form": form}, status=status)
