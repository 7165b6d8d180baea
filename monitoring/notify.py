"""Alert delivery by email and webhook; a failed delivery is recorded on the event, never raised."""

from __future__ import annotations

import logging
import socket

from django.conf import settings
from django.core.mail import send_mail

from imagegen.http import OutboundError, request
from monitoring.models import AlertEvent, AlertKind

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 10.0


def alert_notify(*, event: AlertEvent) -> AlertEvent:
    """Send the event to every configured channel and store who got it and what failed."""
    channels = []
    if settings.ALERT_EMAILS:
        channels.append(("email", _send_email))
    if settings.ALERT_WEBHOOK_URL:
        channels.append(("webhook", _send_webhook))
    for name, send in channels:
        try:
            send(event)
            event.delivered.append(name)
        except Exception as exc:  # delivery problems are reported on the dashboard
            logger.warning("Alert %s could not be sent by %s: %s", event.key, name, exc)
            event.delivery_errors.append(f"{name}: {exc}")
    if event.pk is not None:  # an event the database could not store is still sent
        event.save(update_fields=["delivered", "delivery_errors"])
    log = logger.error if event.kind == AlertKind.FIRED else logger.info
    log("Alert %s %s: %s", event.key, event.kind, event.message, extra={"alert": event.key})
    return event


def subject_of(event: AlertEvent) -> str:
    state = "FIRING" if event.kind == AlertKind.FIRED else "RESOLVED"
    return f"[ImageGen {state}] {event.key} on {socket.gethostname()}"


def _send_email(event: AlertEvent) -> None:
    body = f"{event.message}\n\nTime: {event.created_at.isoformat()}\nRule: {event.key}\n"
    send_mail(subject_of(event), body, None, settings.ALERT_EMAILS, fail_silently=False)


def _send_webhook(event: AlertEvent) -> None:
    payload = {
        "rule": event.key,
        "status": "firing" if event.kind == AlertKind.FIRED else "resolved",
        "message": event.message,
        "time": event.created_at.isoformat(),
        "host": socket.gethostname(),
        "text": f"{subject_of(event)}: {event.message}",  # what Slack-style hooks display
    }
    try:
        response = request("POST", settings.ALERT_WEBHOOK_URL, json=payload, trusted=True, timeout=WEBHOOK_TIMEOUT)
    except OutboundError as exc:
        raise RuntimeError(str(exc)) from exc
    if response.status_code >= 300:
        raise RuntimeError(f"the webhook answered HTTP {response.status_code}")
