"""Batch webhooks: check the URL at submit, record a delivery when a batch finishes, sign and send it.

Deliveries follow the Standard Webhooks specification (https://www.standardwebhooks.com/):
`webhook-id` (the delivery's id, the same on every attempt), `webhook-timestamp` (unix seconds of
this attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed
with the owner's `whsec_` secret. The delivery rows are the queue: the lifecycle writes one in the
transaction that finishes the batch, and each node's loop claims due rows and hands them to
workers (`generation.tasks.send_webhook`). A claim is a conditional UPDATE, so two nodes never
send the same attempt; a 2xx answer is delivered, anything else is retried with backoff for 24 h.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.webhook_secrets import webhook_secret_ensure, webhook_secret_text
from generation.models import Batch, WebhookDelivery, WebhookDeliveryStatus
from imagegen import http
from imagegen.errors import Conflict, ValidationFailed

logger = logging.getLogger(__name__)

BATCH_FINISHED = "batch.finished"
MAX_URL_LENGTH = 2000
# Seconds to wait after the n-th failed attempt; the last step repeats until the 24 h window ends
# (the Standard Webhooks recommendation: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h...).
RETRY_DELAYS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600)
RETRY_WINDOW = timedelta(hours=24)
CLAIM_BATCH = 50


# --- submit ---------------------------------------------------------------------------------------


def check_webhook_url(url: str) -> str:
    """The URL a batch may call, or ValidationFailed naming `webhook_url`.

    https only, unless the host is in WEBHOOK_ALLOWED_HOSTS (a receiver on the operator's own
    network, or a test server); hosts that resolve to private, loopback, link-local or metadata
    addresses are refused unless listed there too. Sending checks the address again.
    """
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(_("The webhook URL is longer than %(max)d characters.") % {"max": MAX_URL_LENGTH})
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise _invalid(_("The webhook URL is not a valid URL.")) from None
    if parts.scheme not in ("http", "https") or not host:
        raise _invalid(_("The webhook URL must be an https:// URL with a host name."))
    allowed = host in settings.WEBHOOK_ALLOWED_HOSTS
    if parts.scheme == "http" and not allowed:
        raise _invalid(_("The webhook URL must use https."))
    if parts.username or parts.password:
        raise _invalid(_("The webhook URL may not contain a user name or password."))
    try:
        http.guard_url(url, allowed_private_hosts=settings.WEBHOOK_ALLOWED_HOSTS)
    except http.OutboundError as error:
        if error.kind == "blocked":
            raise _invalid(
                _("The webhook URL points at a private, loopback or link-local address, which is not allowed.")
            ) from None
        raise _invalid(_("The webhook URL's host name cannot be resolved.")) from None
    return url


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_webhook_url", details={"webhook_url": [message]})


# --- the event ------------------------------------------------------------------------------------


def batch_summary(batch: Batch) -> dict[str, Any]:
    """The `data` of a `batch.finished` event."""
    return {
        "id": str(batch.pk),
        "name": batch.name,
        "status": batch.status,
        "total": batch.total,
        "completed": batch.completed,
        "failed": batch.failed,
        "cancelled": batch.cancelled,
        "cost_usd": str(Decimal(batch.cost_usd).quantize(Decimal("0.00001"))),
        "created_at": _iso(batch.created_at),
        "finished_at": _iso(batch.finished_at),
        "url": settings.SITE_URL + reverse("api-batch-detail", args=[batch.pk]),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def delivery_create(*, batch: Batch, now: datetime) -> WebhookDelivery:
    """Record the `batch.finished` event; called by the lifecycle inside the transaction that finishes the batch."""
    payload = {"type": BATCH_FINISHED, "timestamp": _iso(now), "data": batch_summary(batch)}
    return WebhookDelivery.objects.create(
        batch=batch,
        event=BATCH_FINISHED,
        url=batch.webhook_url,
        payload=payload,
        next_attempt_at=now,
        retry_until=now + RETRY_WINDOW,
        created_at=now,
    )


# --- signing ----------------------------------------------------------------------------------------


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one attempt, per the Standard Webhooks specification."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()


# --- claiming and sending ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    delivery_id: uuid.UUID
    attempt: int


def attempt_seconds() -> float:
    """The most one attempt may take, all of it: a receiver that trickles its answer is cut off here."""
    return 3 * settings.WEBHOOK_TIMEOUT_SECONDS


def claim_seconds() -> float:
    """Longer than one attempt can last (attempt_seconds), so a live sender never loses it."""
    return attempt_seconds() + settings.WEBHOOK_TIMEOUT_SECONDS + 30


def deliveries_claim(*, now: datetime, limit: int = CLAIM_BATCH) -> list[Claim]:
    """Claim due deliveries for sending: each row is taken by one conditional UPDATE, so by one caller only."""
    claims = []
    due = WebhookDelivery.objects.due(now).order_by("next_attempt_at").values_list("pk", "attempts")[:limit]
    for delivery_id, attempts in list(due):
        taken = (
            WebhookDelivery.objects.due(now)
            .filter(pk=delivery_id, attempts=attempts)
            .update(
                attempts=attempts + 1,
                claimed_until=now + timedelta(seconds=claim_seconds()),
                claimed_by="",
            )
        )
        if taken:
            claims.append(Claim(delivery_id, attempts + 1))
    return claims


def delivery_send(*, delivery_id: uuid.UUID, attempt: int, sender: str, now: datetime | None = None) -> str:
    """Send one claimed attempt and record what happened; "skipped" when the attempt is not ours any more."""
    now = now or timezone.now()
    started = WebhookDelivery.objects.filter(
        pk=delivery_id,
        status=WebhookDeliveryStatus.PENDING,
        attempts=attempt,
        claimed_by="",
        claimed_until__gte=now,
    ).update(claimed_by=sender[:100], last_attempt_at=now)
    if not started:
        return "skipped"  # a second copy of the task, or a claim that ran out and was taken again
    delivery = WebhookDelivery.objects.select_related("batch__owner").get(pk=delivery_id)
    try:
        code, error, permanent = _post(delivery, now)
    except Exception:  # e.g. the secret cannot be decrypted: back off like any failure, never loop on claims
        logger.exception("Webhook delivery %s could not be sent", delivery_id)
        code, error, permanent = None, "internal error", False
    return _record(delivery, now=now, code=code, error=error, permanent=permanent)


def _post(delivery: WebhookDelivery, now: datetime) -> tuple[int | None, str, bool]:
    """POST the event; the answer's status code, an error text ("" for 2xx) and whether retrying is pointless."""
    secret = webhook_secret_ensure(user=delivery.batch.owner)
    body = body_of(delivery)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": str(delivery.pk),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            secret=webhook_secret_text(secret.key), message_id=str(delivery.pk), timestamp=timestamp, body=body
        ),
    }
    seconds = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        response = http.request(
            "POST",
            delivery.url,
            content=body,
            headers=headers,
            timeout=httpx.Timeout(seconds, pool=seconds),
            allowed_private_hosts=settings.WEBHOOK_ALLOWED_HOSTS,
            read_body=False,
            deadline=attempt_seconds(),
        )
    except http.OutboundError as error:
        return None, str(error)[:500], error.kind in ("blocked", "invalid_url")
    if 200 <= response.status_code < 300:
        return response.status_code, "", False
    return response.status_code, f"HTTP {response.status_code}", False


def _record(delivery: WebhookDelivery, *, now: datetime, code: int | None, error: str, permanent: bool) -> str:
    ours = WebhookDelivery.objects.filter(
        pk=delivery.pk, attempts=delivery.attempts, claimed_by=delivery.claimed_by, status=WebhookDeliveryStatus.PENDING
    )
    common = {"response_code": code, "last_error": error, "claimed_until": None}
    if not error:
        ours.update(status=WebhookDeliveryStatus.DELIVERED, delivered_at=now, next_attempt_at=None, **common)
        return WebhookDeliveryStatus.DELIVERED
    retry_at = None if permanent else next_attempt_time(delivery.attempts, now=now, retry_until=delivery.retry_until)
    if retry_at is None:
        ours.update(status=WebhookDeliveryStatus.FAILED, next_attempt_at=None, **common)
        logger.warning(
            "Webhook delivery %s of batch %s failed for good after %d attempts: %s",
            delivery.pk,
            delivery.batch_id,
            delivery.attempts,
            error,
        )
        return WebhookDeliveryStatus.FAILED
    ours.update(next_attempt_at=retry_at, **common)
    return WebhookDeliveryStatus.PENDING


def next_attempt_time(attempts: int, *, now: datetime, retry_until: datetime) -> datetime | None:
    """When to try again after `attempts` failed ones: the backoff step, cut to the end of the window; None after it."""
    if now >= retry_until:
        return None
    delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return min(now + timedelta(seconds=delay), retry_until)


# --- resending --------------------------------------------------------------------------------------


def delivery_rearm(*, delivery: WebhookDelivery, now: datetime) -> WebhookDelivery:
    """Send a delivery again now (same webhook-id, fresh timestamp and signature), with a new 24 h window."""
    idle = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    rearmed = WebhookDelivery.objects.filter(idle, pk=delivery.pk).update(
        status=WebhookDeliveryStatus.PENDING,
        next_attempt_at=now,
        retry_until=now + RETRY_WINDOW,
        claimed_until=None,
        claimed_by="",
    )
    if not rearmed:
        raise Conflict(
            _("This webhook is being sent right now; look again in a moment."), code="webhook_delivery_in_progress"
        )
    delivery.refresh_from_db()
    return delivery
