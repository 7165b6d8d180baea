"""Middleware of the accounts app: portal language, one login door, staff two-factor enforcement, rate-limit headers."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from imagegen.api import error_body

# Pages a staff member without two-factor may still open: to enrol, to leave, and what pages need.
OPEN_PREFIXES = ("/accounts/", "/static/", "/i18n/", "/health")


class PortalLanguageMiddleware:
    """The portal speaks LANGUAGE_CODE (繁體中文) until the person picks a language (a cookie), even
    from an English browser; LANGUAGE_FROM_BROWSER=true follows Accept-Language instead. The API
    always honours Accept-Language: its clients are programs that ask for what they can show."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.LANGUAGE_FROM_BROWSER and not request.path.startswith("/api/"):
            request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)


class TwoFactorMiddleware:
    """Sends the admin login to the portal login (rate limits and 2FA apply there) and, with
    REQUIRE_2FA_FOR_STAFF, keeps staff sessions without a verified second factor out of every
    page but the account pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == reverse("admin:login"):
            if request.user.is_authenticated and not request.user.is_staff:
                # Signed in but not staff: sending them to the login page would bounce straight
                # back here, for ever. Say plainly that the admin is not for them.
                return render(request, "accounts/admin_forbidden.html", status=403)
            query = urlencode({"next": request.GET.get("next", reverse("admin:index"))})
            return redirect(f"{reverse('accounts:login')}?{query}")
        if self._needs_second_factor(request) and not request.path.startswith(OPEN_PREFIXES):
            if request.path.startswith("/api/"):
                message = _("Staff accounts must set up two-factor authentication first.")
                return JsonResponse(error_body("two_factor_required", message), status=403)
            messages.warning(request, _("Staff accounts must set up two-factor authentication before going on."))
            return redirect("accounts:two_factor")
        return self.get_response(request)

    @staticmethod
    def _needs_second_factor(request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        if not settings.REQUIRE_2FA_FOR_STAFF or user is None or not user.is_authenticated or not user.is_staff:
            return False
        return not user.is_verified()


class RateLimitHeadersMiddleware:
    """Tells API clients their budget: X-RateLimit-Limit, -Remaining and -Reset (seconds)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        hit = getattr(request, "rate_limit_hit", None)
        if hit is not None:
            response["X-RateLimit-Limit"] = str(hit.rate.limit)
            response["X-RateLimit-Remaining"] = str(hit.remaining)
            response["X-RateLimit-Reset"] = str(hit.retry_after)
        return response
