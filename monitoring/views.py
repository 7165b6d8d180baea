"""Health endpoint: 200 when every dependency answers, 503 naming the ones that do not."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from monitoring.health import run_checks


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    failing = [name for name, result in results.items() if not result.ok]
    body = {
        "status": "ok" if not failing else "fail",
        "failing": failing,
        "checks": {name: result.as_dict() for name, result in results.items()},
    }
    return JsonResponse(body, status=503 if failing else 200)
