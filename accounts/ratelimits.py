"""Named rate limits, defined once, counted atomically in Redis or the database."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from accounts.models import RateLimitCounter
from imagegen.errors import TooManyRequests

logger = logging.getLogger(__name__)

# Each named limit reads its setting when used, so tests and operators change it in one place.
RATE_SETTINGS = {
    "api_requests_per_minute": "API_RATE_LIMIT",
    "portal_requests_per_minute": "PORTAL_RATE_LIMIT",
    "login_attempts": "LOGIN_RATE_LIMIT",
    "login_failures_per_account": "LOGIN_ACCOUNT_FAILURE_LIMIT",
}
PERIOD_SECONDS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")
# Hit the key and report (count, milliseconds left in the window) in one atomic step. The window
# starts at the first hit, so a burst is never split across two windows.
REDIS_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""
REDIS_REFUND = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return count
"""


@dataclass(frozen=True)
class Rate:
    limit: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.limit}/{self.seconds}s"


@dataclass(frozen=True)
class Hit:
    """The state of one key's window after a request was counted (or peeked at)."""

    name: str
    rate: Rate
    count: int
    retry_after: int

    @property
    def allowed(self) -> bool:
        return self.count <= self.rate.limit

    @property
    def remaining(self) -> int:
        return max(0, self.rate.limit - self.count)


@functools.lru_cache(maxsize=32)
def parse_rate(text: str) -> Rate:
    """'120/min', '5/15min', '1000/day', '10/30s' into a limit and a period in seconds."""
    match = RATE_PATTERN.match(text.lower())
    if not match or match.group(3) not in PERIOD_SECONDS:
        raise ImproperlyConfigured(f"Bad rate {text!r}: write it as N/period, e.g. 120/min or 5/15min.")
    multiplier = int(match.group(2) or 1)
    limit, seconds = int(match.group(1)), multiplier * PERIOD_SECONDS[match.group(3)]
    if limit < 1 or seconds < 1:
        raise ImproperlyConfigured(f"Bad rate {text!r}: the limit and the period must be positive.")
    return Rate(limit=limit, seconds=seconds)


def rate_for(name: str) -> Rate:
    return parse_rate(getattr(settings, RATE_SETTINGS[name]))


def _key(name: str, ident: str) -> str:
    # Identifiers come from users (usernames); hashing keeps keys short and free of odd characters.
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"{settings.RATE_LIMIT_KEY_PREFIX}:{name}:{digest}"


class RateLimitUnavailable(TooManyRequests):
    """The store that counts requests (Redis, or the database) cannot be read or written.

    A TooManyRequests, so every caller that handles a refusal handles this one too; but a 503 with
    its own code, since it is our fault, not the client's.
    """

    status_code = 503
    default_code = "rate_limit_unavailable"


# How often, at most, each process logs that the store is down (requests let through or refused).
STORE_DOWN_LOG_SECONDS = 60.0
STORE_RETRY_AFTER_SECONDS = 30


def rate_limit_hit(*, name: str, ident: str) -> Hit:
    """Count one request against `name` for `ident`, atomically, and say whether it is allowed.

    Raises `rate_limit_unavailable` (503) when the store cannot count it.
    """
    try:
        return _count(name, ident)
    except _store_errors() as exc:
        _store_down_log.note(name, exc, let_through=False)
        raise _unavailable(name) from exc


def rate_limit_enforce(*, name: str, ident: str, fail_open: bool = False) -> Hit | None:
    """Count one request and raise `rate_limited` (429 with Retry-After) when it is over the limit.

    When the store is down the request is refused with `rate_limit_unavailable` (503), unless
    `fail_open` (safe, read-only requests): then it is let through uncounted and None is returned.
    Either way it is logged, as one WARNING per STORE_DOWN_LOG_SECONDS, not one per request.
    """
    try:
        hit = _count(name, ident)
    except _store_errors() as exc:
        _store_down_log.note(name, exc, let_through=fail_open)
        if fail_open:
            return None
        raise _unavailable(name) from exc
    if not hit.allowed:
        raise rate_limited_error(hit)
    return hit


def _count(name: str, ident: str) -> Hit:
    rate = rate_for(name)
    key = _key(name, ident)
    count, seconds_left = _redis_hit(key, rate) if settings.REDIS_URL else _db_hit(key, rate)
    return Hit(name=name, rate=rate, count=count, retry_after=max(1, math.ceil(seconds_left)))


def _unavailable(name: str) -> RateLimitUnavailable:
    message = _("Requests cannot be counted right now, so this one is refused; reading still works. Try again shortly.")
    return RateLimitUnavailable(message, retry_after=STORE_RETRY_AFTER_SECONDS, details={"limit": name})


def rate_limited_error(hit: Hit) -> TooManyRequests:
    message = _("Too many requests. Try again in %(seconds)d seconds.") % {"seconds": hit.retry_after}
    details = {"limit": hit.name, "max_requests": hit.rate.limit, "period_seconds": hit.rate.seconds}
    return TooManyRequests(message, code="rate_limited", retry_after=hit.retry_after, details=details)


def rate_limit_refund(*, name: str, ident: str) -> None:
    """Give back one counted request (e.g. a login attempt that turned out to be the right password).

    Best effort: when the store is down the attempt simply stays counted.
    """
    try:
        _refund(name, ident)
    except _store_errors() as exc:
        _store_down_log.note(name, exc, let_through=True)


def _refund(name: str, ident: str) -> None:
    key = _key(name, ident)
    if settings.REDIS_URL:
        _redis().eval(REDIS_REFUND, 1, key)
        return
    RateLimitCounter.objects.filter(key=key, count__gt=0, window_end__gt=timezone.now()).update(count=F("count") - 1)


def rate_limit_peek(*, name: str, ident: str) -> Hit:
    """The current window without counting anything (for the account page and /api/v1/me/).

    A read-only view must not fail with the store: then nothing is being counted, and it says 0 used.
    """
    try:
        return _peek(name, ident)
    except _store_errors() as exc:
        _store_down_log.note(name, exc, let_through=True)
        rate = rate_for(name)
        return Hit(name=name, rate=rate, count=0, retry_after=rate.seconds)


def _peek(name: str, ident: str) -> Hit:
    rate = rate_for(name)
    key = _key(name, ident)
    if settings.REDIS_URL:
        pipe = _redis().pipeline()
        pipe.get(key)
        pipe.pttl(key)
        raw, ttl = pipe.execute()
        count, seconds_left = int(raw or 0), (ttl / 1000 if ttl and ttl > 0 else rate.seconds)
    else:
        row = RateLimitCounter.objects.filter(key=key, window_end__gt=timezone.now()).first()
        count = row.count if row else 0
        seconds_left = (row.window_end - timezone.now()).total_seconds() if row else rate.seconds
    return Hit(name=name, rate=rate, count=count, retry_after=max(1, math.ceil(seconds_left)))


class _StoreDownLog:
    """One WARNING per STORE_DOWN_LOG_SECONDS while the store is down, not one per request: it
    counts the requests let through uncounted and those refused since the last one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logged_at: float | None = None
        self.let_through = self.refused = 0

    def note(self, name: str, exc: BaseException | None, *, let_through: bool) -> None:
        with self.lock:
            if let_through:
                self.let_through += 1
            else:
                self.refused += 1
            now = time.monotonic()
            if self.logged_at is not None and now - self.logged_at < STORE_DOWN_LOG_SECONDS:
                return
            passed, refused = self.let_through, self.refused
            self.let_through, self.refused, self.logged_at = 0, 0, now
        logger.warning(
            "Rate-limit store unavailable (%s: %s): %d read-only request(s) let through uncounted, "
            "%d refused, since the last report (%s)",
            type(exc).__name__,
            exc,
            passed,
            refused,
            name,
            extra={"rate_limit": name, "let_through": passed, "refused": refused},
        )


_store_down_log = _StoreDownLog()


def _store_errors() -> tuple[type[Exception], ...]:
    """What a store that is down raises: Redis connection and timeout errors, database errors
    (SQLite "database or disk is full" or "database is locked", a lost PostgreSQL connection)."""
    import redis

    return (redis.RedisError, DatabaseError)


@functools.lru_cache(maxsize=4)
def _redis_client(url: str) -> Any:
    import redis

    # Short timeouts: a Redis that does not answer must not hold every request for long.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _redis() -> Any:
    return _redis_client(settings.REDIS_URL)


def _redis_hit(key: str, rate: Rate) -> tuple[int, float]:
    count, ttl_ms = _redis().eval(REDIS_HIT, 1, key, rate.seconds * 1000)
    return int(count), int(ttl_ms) / 1000


# Count a hit in one atomic statement: start the key's window, or roll it over when it has ended,
# or add one to it; and say the count and when the window ends. (An upsert with RETURNING: SQLite
# 3.35+ and PostgreSQL.) SET expressions read the row as it was, so all three test the old end.
DB_HIT = """
INSERT INTO {table} ({key}, {start}, {end}, {count}) VALUES (%s, %s, %s, 1)
ON CONFLICT ({key}) DO UPDATE SET
  {start} = CASE WHEN {table}.{end} <= %s THEN excluded.{start} ELSE {table}.{start} END,
  {end} = CASE WHEN {table}.{end} <= %s THEN excluded.{end} ELSE {table}.{end} END,
  {count} = CASE WHEN {table}.{end} <= %s THEN 1 ELSE {table}.{count} + 1 END
RETURNING {count}, {end}
"""


def _db_hit(key: str, rate: Rate) -> tuple[int, float]:
    """Count one hit in the key's row; the first hit of a window also sweeps windows long ended."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_db_hit_sql(connection.vendor), _db_hit_params(key, now, now + timedelta(seconds=rate.seconds)))
        count, window_end = cursor.fetchone()
    if count == 1:  # a new window: keep the table small
        RateLimitCounter.objects.filter(window_end__lt=now - timedelta(days=1)).delete()
    return int(count), (_as_datetime(window_end) - now).total_seconds()


@functools.lru_cache(maxsize=4)
def _db_hit_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    columns = {name: quote(name) for name in ("key", "count")}
    return DB_HIT.format(
        table=quote(RateLimitCounter._meta.db_table), start=quote("window_start"), end=quote("window_end"), **columns
    )


def _db_hit_params(key: str, now: datetime, end: datetime) -> list[Any]:
    adapt = connection.ops.adapt_datetimefield_value
    return [key, adapt(now), adapt(end), adapt(now), adapt(now), adapt(now)]


def _as_datetime(value: Any) -> datetime:
    """A returned timestamp: a datetime (PostgreSQL) or the text SQLite stores, in UTC."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is None:
        raise DatabaseError(f"Unreadable rate-limit window end: {value!r}")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
