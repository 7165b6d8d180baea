"""`Idempotency-Key` on every API POST: a retried request gets the first response, never a second effect.

The convention of Stripe and of the IETF httpapi draft: the client sends a unique key with a POST;
the same key with the same request within IDEMPOTENCY_TTL_HOURS replays the first response (status,
body, `Idempotent-Replayed: true`); the same key with another request is 422 `idempotency_conflict`;
a duplicate that arrives while the first still runs waits up to IDEMPOTENCY_WAIT_SECONDS for it,
then gets 409 `idempotency_in_progress` with Retry-After. Keys belong to the user, so two users'
keys never collide.

A view that makes a batch does so through `make_once`, which records the batch on the key in the
batch's transaction. When its request ends without an answer to keep (a gateway call that
outlasted its wait or failed), or no answer comes within IDEMPOTENCY_WAIT_SECONDS (its process may
have died), a retry with the key runs the view again, and `make_once` answers from that batch
instead of making another. Gateway replays name the batch in `X-ImageGen-Batch`, as its answers do.

The lock is the unique (user, key) row, inserted before the request runs: of concurrent
duplicates exactly one insert succeeds and only that request reaches the view. Responses
with 2xx and 4xx statuses other than 429 are kept; a 5xx, a 429 or a streamed response frees the
key again, so the client's retry runs for real.

It is a middleware so that every POST under /api/v1/ gets it, including endpoints added later.
DRF authenticates inside the view, so the middleware asks DRF's authenticators who the caller is
(only when the header is present); an unauthenticated request passes through and the view refuses it.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.settings import api_settings

from accounts.models import IdempotencyKey
from imagegen.api import BATCH_HEADER, GATEWAY_PREFIX, json_error

T = TypeVar("T")
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# POSTs under these prefixes honour the header.
IDEMPOTENT_PREFIXES: tuple[str, ...] = ("/api/v1/", GATEWAY_PREFIX)
MAX_KEY_LENGTH = 255
# A key still "in progress" this long after its request began was left by a process that died.
ABANDONED_AFTER = timedelta(minutes=10)
POLL_SECONDS = 0.1


def key_is_valid(key: str) -> bool:
    """1 to 255 printable ASCII characters (space to tilde)."""
    return 0 < len(key) <= MAX_KEY_LENGTH and all(" " <= character <= "~" for character in key)


def request_fingerprint(*, method: str, path: str, content_type: str, body: bytes) -> str:
    """SHA-256 of the method, path (with query) and body; JSON bodies canonically (key order, spacing)."""
    canonical = body
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            canonical = json.dumps(
                json.loads(body or b"null"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
        except ValueError:
            canonical = body  # not JSON after all: the view will say so, and the same bytes replay it
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


# --- the store (services) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to take a key: ours to run, or the row someone else holds."""

    row: IdempotencyKey
    ours: bool


def idempotency_claim(*, user_id: int, key: str, fingerprint: str, now: datetime | None = None) -> Claim:
    """Insert the key (it is then ours), or return the live row that holds it; expired rows are replaced."""
    now = now or timezone.now()
    for _try in range(3):
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(user_id=user_id, key=key, fingerprint=fingerprint, created_at=now)
            return Claim(row=row, ours=True)
        except IntegrityError:
            pass
        row_or_none = IdempotencyKey.objects.filter(user_id=user_id, key=key).first()
        if row_or_none is None:
            continue  # freed between our insert and our read: try the insert again
        if not _expired(row_or_none, now):
            return Claim(row=row_or_none, ours=False)
        IdempotencyKey.objects.filter(pk=row_or_none.pk, created_at=row_or_none.created_at).delete()
    raise RuntimeError("Could not claim an idempotency key")  # pragma: no cover - three races in a row


def _expired(row: IdempotencyKey, now: datetime) -> bool:
    if row.status_code is None and row.made_batch is None:
        return row.created_at < now - ABANDONED_AFTER
    return row.created_at < now - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)


def idempotency_complete(*, row: IdempotencyKey, status_code: int, content_type: str, body: bytes) -> None:
    """Keep the answer to replay; of retries resuming one parked key, the first answer is kept."""
    IdempotencyKey.objects.filter(pk=row.pk, status_code__isnull=True).update(
        status_code=status_code, content_type=content_type, body=body
    )


def idempotency_batch_record(*, row: IdempotencyKey, batch_id: uuid.UUID) -> None:
    """The request has made `batch_id`: until it is answered, a retry with the key resumes that batch."""
    IdempotencyKey.objects.filter(pk=row.pk, status_code__isnull=True).update(made_batch=batch_id)


def idempotency_release(*, row: IdempotencyKey) -> None:
    """Free the key: the request failed in a way a retry should repeat (5xx, 429, an exception).

    A key that names the batch its request made stays, marked unanswered: the batch exists, and a
    retry must resume it rather than make another.
    """
    unanswered = IdempotencyKey.objects.filter(pk=row.pk, status_code__isnull=True)
    if not unanswered.filter(made_batch__isnull=True).delete()[0]:
        unanswered.update(unanswered=True)


def idempotency_keys_prune(*, now: datetime | None = None) -> int:
    """Delete keys past IDEMPOTENCY_TTL_HOURS (and abandoned ones); run by the daily maintenance."""
    now = now or timezone.now()
    expired = now - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    abandoned = now - ABANDONED_AFTER
    kept = Q(status_code__isnull=False) | Q(made_batch__isnull=False)
    done = IdempotencyKey.objects.filter(kept, created_at__lt=expired).delete()[0]
    stuck = IdempotencyKey.objects.filter(~kept, created_at__lt=abandoned).delete()[0]
    return done + stuck


def is_replayable(response: HttpResponse) -> bool:
    """2xx and 4xx other than 429 are the request's answer; 5xx and 429 say "try again"."""
    status_code = response.status_code
    if getattr(response, "streaming", False):
        return False
    return 200 <= status_code < 300 or (400 <= status_code < 500 and status_code != 429)


# --- one-time form tokens (the portal's forms) --------------------------------------------------------

# Every submission of one form with one token is the same request, whatever was typed: a second
# POST of a token is a double submit and gets the first one's result.
FORM_FINGERPRINT = "form"
MAX_FORM_TOKEN_LENGTH = 64


def form_token_claim(*, user_id: int, form: str, token: str) -> Claim | None:
    """Claim a form's one-time token (waiting a little for a submission still running); None without a token."""
    if not token or len(token) > MAX_FORM_TOKEN_LENGTH or not key_is_valid(token):
        return None
    return _claim_waiting(user_id=user_id, key=f"form:{form}:{token}", fingerprint=FORM_FINGERPRINT)


def form_token_complete(*, row: IdempotencyKey, result: str) -> None:
    """Remember what the submission made (e.g. the batch id), for a second POST of the same token."""
    idempotency_complete(row=row, status_code=303, content_type="text/plain", body=result.encode())


def form_token_result(row: IdempotencyKey) -> str | None:
    """What the first submission of the token made; None while it is still running."""
    return None if row.status_code is None else bytes(row.body).decode()


# --- the middleware ---------------------------------------------------------------------------------


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST" or not request.path.startswith(IDEMPOTENT_PREFIXES):
            return self.get_response(request)
        if not key_is_valid(key):
            message = _("Idempotency-Key must be 1 to %(max)d printable ASCII characters.") % {"max": MAX_KEY_LENGTH}
            return json_error(request, "invalid_idempotency_key", message, 400)
        body = request.body  # read once here; Django keeps it for the view's parsers
        user_id = _api_user_id(request)
        if user_id is None:
            return self.get_response(request)  # not signed in: the view answers 401
        fingerprint = request_fingerprint(
            method=request.method, path=request.get_full_path(), content_type=request.content_type or "", body=body
        )
        claim = _claim_waiting(user_id=user_id, key=key, fingerprint=fingerprint)
        if claim.ours or _resumable(claim.row, fingerprint):
            return self._run(request, claim.row)
        return _answer_duplicate(request, claim.row, fingerprint)

    def _run(self, request: HttpRequest, row: IdempotencyKey) -> HttpResponse:
        request.idempotency_row = row  # type: ignore[attr-defined]  # for make_once
        try:
            response = self.get_response(request)
        except BaseException:
            idempotency_release(row=row)
            raise
        if is_replayable(response):
            content_type = str(response.get("Content-Type", ""))[:100]
            idempotency_complete(
                row=row, status_code=response.status_code, content_type=content_type, body=response.content
            )
        else:
            idempotency_release(row=row)
        return response


def make_once(
    request: HttpRequest,
    *,
    make: Callable[[], T],
    batch_of: Callable[[T], uuid.UUID],
    resume: Callable[[uuid.UUID], T],
) -> T:
    """What a view makes for `request`, made once per Idempotency-Key.

    A retry of a request whose key already names its batch gets `resume(batch_id)`; otherwise
    `make()` runs, and the key names `batch_of(what it made)` in the same transaction, so that from
    then on a retry resumes it, even when this process dies before it answers.
    """
    row: IdempotencyKey | None = getattr(request, "idempotency_row", None)
    if row is not None and row.made_batch is not None:
        return resume(row.made_batch)
    with transaction.atomic():  # what is made and the key that names it, or neither
        made = make()
        if row is not None:
            row.made_batch = batch_of(made)
            idempotency_batch_record(row=row, batch_id=row.made_batch)
    return made


def _resumable(row: IdempotencyKey, fingerprint: str) -> bool:
    """A duplicate that found the key's batch made but no answer (left unanswered, or none within
    IDEMPOTENCY_WAIT_SECONDS: its process may have died) resumes that batch."""
    return row.status_code is None and row.made_batch is not None and row.fingerprint == fingerprint


def _api_user_id(request: HttpRequest) -> int | None:
    """Who DRF will find the caller to be (bearer token or session), without leaving a trace on `request`."""
    before = request.__dict__.get("user")
    authenticators: list[Any] = list(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    drf_request = Request(request, authenticators=[authenticator() for authenticator in authenticators])
    try:
        user = drf_request.user
    except Exception:  # bad token, CSRF, two-factor: the view gives the proper error
        return None
    finally:
        if before is not None:
            request.user = before
    return user.pk if user is not None and user.is_authenticated else None


def _claim_waiting(*, user_id: int, key: str, fingerprint: str) -> Claim:
    """Claim the key; while a duplicate holds it unfinished, wait a little for its answer."""
    deadline = time.monotonic() + settings.IDEMPOTENCY_WAIT_SECONDS
    while True:
        claim = idempotency_claim(user_id=user_id, key=key, fingerprint=fingerprint)
        row = claim.row
        answered = row.status_code is not None or row.unanswered
        if claim.ours or answered or row.fingerprint != fingerprint or time.monotonic() >= deadline:
            return claim
        time.sleep(POLL_SECONDS)


def _answer_duplicate(request: HttpRequest, row: IdempotencyKey, fingerprint: str) -> HttpResponse:
    if row.fingerprint != fingerprint:
        message = _("This Idempotency-Key was already used with a different request.")
        return json_error(request, "idempotency_conflict", message, 422)
    if row.status_code is None:
        message = _("A request with this Idempotency-Key is still being processed; try again shortly.")
        response = json_error(request, "idempotency_in_progress", message, 409)
        response["Retry-After"] = "1"
        return response
    replay = HttpResponse(bytes(row.body), status=row.status_code, content_type=row.content_type or None)
    replay[REPLAYED_HEADER] = "true"
    if row.made_batch is not None and request.path.startswith(GATEWAY_PREFIX):
        replay[BATCH_HEADER] = str(row.made_batch)  # as the gateway's own answer names it
    return replay
