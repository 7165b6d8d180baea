"""System checks of the monitoring app (shown by `manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_metrics_token(app_configs: Any, **kwargs: Any) -> list[Warning]:
    if settings.METRICS_TOKEN:
        return []
    return [
        Warning(
            "METRICS_TOKEN is not set, so /metrics answers 403 in production.",
            hint="Set METRICS_TOKEN to a long random string and give it to Prometheus as a bearer token.",
            id="monitoring.W001",
        )
    ]


@register(Tags.security, deploy=True)
def check_email_backend(app_configs: Any, **kwargs: Any) -> list[Warning]:
    if "console" not in settings.EMAIL_BACKEND:
        return []
    return [
        Warning(
            "EMAIL_BACKEND is the console backend: password-reset links would be printed to the log.",
            hint="Set EMAIL_URL (e.g. smtp+tls://user:password@mail.example.com:587) for production.",
            id="monitoring.W002",
        )
    ]
