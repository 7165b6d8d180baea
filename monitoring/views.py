"""Monitoring endpoints: liveness, readiness, Prometheus metrics and the staff dashboard."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from imagegen import __version__
from imagegen.api import error_body
from monitoring.dashboard import dashboard_data
from monitoring.health import CORE, LIVENESS, run_checks
from monitoring.prometheus import render_metrics
from monitoring.selectors import RANGES


def _checks_response(names: list[str]) -> JsonResponse:
    results = run_checks(names)
    failing = [name for name, result in results.items() if not result.ok]
    body = {
        "status": "ok" if not failing else "fail",
        "version": __version__,
        "failing": failing,
        "checks": {name: result.as_dict() for name, result in results.items()},
    }
    return JsonResponse(body, status=503 if failing else 200)


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Database (read and write), cache, queue, storage and workers: 503 naming the failing ones."""
    return _checks_response(list(CORE))


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """Liveness: the web process answers, whatever its dependencies do (for process supervisors)."""
    return _checks_response(list(LIVENESS))


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: everything in /health plus disk, progress (stalls) and results; 503 names what failed."""
    return _checks_response([])


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token and settings.PRODUCTION:
        # Queue sizes, users' activity and error rates are not for the public internet.
        message = _("Metrics are off: set METRICS_TOKEN to scrape them in production.")
        return JsonResponse(error_body("metrics_disabled", message), status=403)
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            body = error_body("not_authenticated", _("Send the metrics token as Authorization: Bearer <token>."))
            response = JsonResponse(body, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors go to the login page; signed-in users who are not staff get a 404."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if request.path.endswith("/data"):
                return JsonResponse(error_body("not_authenticated", _("Please log in.")), status=401)
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@never_cache
@require_GET
@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/dashboard.html", {"ranges": RANGES, "range": _range(request) or "hour"})


@never_cache
@require_GET
@staff_required
def dashboard_json(request: HttpRequest) -> JsonResponse:
    range_name = _range(request)
    if range_name is None:
        message = _("Unknown range %(range)s: use hour, day or week.") % {"range": request.GET.get("range", "")[:20]}
        return JsonResponse(error_body("validation_error", message, {"range": list(RANGES)}), status=400)
    return JsonResponse(dashboard_data(range_name=range_name))


def _range(request: HttpRequest) -> str | None:
    value = request.GET.get("range", "hour")
    return value if value in RANGES else None
