"""Django settings for ImageGen, read from the environment with zero-config development defaults."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from imagegen import __version__

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Everything this process writes (database, logs, images, backups) is for its own user only:
# files 0600, directories 0700. Static files are served by the application itself (WhiteNoise).
os.umask(0o077)


def _private_dir(path: Path) -> Path:
    """Create `path` if needed and close it to other users (also on installs made before this rule)."""
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours to change (e.g. a mounted volume): leave it
        path.chmod(0o700)
    return path


DATA_DIR = _private_dir(Path(env.str("DATA_DIR", default=str(BASE_DIR / "var"))).resolve())

# --- Core -------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=False)
_secret_key = env.str("SECRET_KEY", default="")
_allowed_hosts = env.list("ALLOWED_HOSTS", default=[])
# Production means DEBUG off and an explicit host list: then nothing may fall back to a default.
PRODUCTION = env.bool("PRODUCTION", default=bool(_allowed_hosts) and not DEBUG)

if PRODUCTION and not _secret_key:
    raise ImproperlyConfigured("SECRET_KEY must be set in production (ALLOWED_HOSTS set, DEBUG off).")
if not _secret_key:
    # Development: a key generated once and kept under the data directory.
    _key_file = DATA_DIR / "secret-key"
    if not _key_file.exists():
        from django.core.management.utils import get_random_secret_key

        _key_file.write_text(get_random_secret_key())
        _key_file.chmod(0o600)
    _secret_key = _key_file.read_text().strip()
SECRET_KEY = _secret_key
ALLOWED_HOSTS = _allowed_hosts or ["localhost", "127.0.0.1", "[::1]", "testserver"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "accounts",
    "generation",
    "monitoring",
    # After generation, so that generation's `manage.py qcluster` (a node with its liveness loop)
    # is the one that runs.
    "django_q",
]

MIDDLEWARE = [
    "monitoring.middleware.RequestMonitoringMiddleware",
    "imagegen.request_limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "accounts.middleware.PortalLanguageMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.RateLimitHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: it answers replays itself, after authentication, two-factor and CSRF have run.
    "accounts.idempotency.IdempotencyMiddleware",
]

# Bodies Django reads into memory (JSON, form fields) stay at its default 2.5 MiB; uploaded prompt
# files at 2 MiB, stopped while they stream; anything declaring more than both is refused unread.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_REQUEST_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE + MAX_UPLOAD_BYTES + 64 * 1024
FILE_UPLOAD_HANDLERS = ["imagegen.request_limits.LimitedUploadHandler"]

ROOT_URLCONF = "imagegen.urls"
WSGI_APPLICATION = "imagegen.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "imagegen.context_processors.version",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------

SQLITE_PATH = DATA_DIR / "imagegen.sqlite3"
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}"),
}
SQLITE_BUSY_TIMEOUT = env.int("SQLITE_BUSY_TIMEOUT", default=30)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while workers write; IMMEDIATE transactions take the write
    # lock up front so concurrent writers queue on the busy timeout instead of failing with
    # "database is locked" when a read lock is upgraded.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": SQLITE_BUSY_TIMEOUT,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-imagegen.sqlite3")}
# Keep connections between requests and tasks: reconnecting (and re-running the SQLite PRAGMAs)
# for every image would cost more than the query itself.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and queue ----------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="imagegen")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
else:
    # A file cache is shared by every process on this machine (web and workers), which the
    # worker heartbeats in the health check rely on; local memory would not be.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# Above the longest attempt (10 s connect + 120 s read + 240 s of Replicate polling + storage
# retries = 371.5 s by default), which settings check at start (_check_timeouts below).
GENERATION_TASK_TIMEOUT = env.int("GENERATION_TASK_TIMEOUT", default=420)
Q_CLUSTER: dict[str, object] = {
    "name": env.str("Q_CLUSTER_NAME", default="imagegen"),
    "workers": env.int("Q_WORKERS", default=4),
    # A task may run for `timeout` seconds; the ORM broker re-delivers an unacknowledged task
    # after `retry` seconds, so retry must exceed timeout or live tasks would be delivered twice.
    "timeout": GENERATION_TASK_TIMEOUT,
    "retry": GENERATION_TASK_TIMEOUT + env.int("Q_RETRY_MARGIN", default=60),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    "ack_failures": True,
    "save_limit": env.int("Q_SAVE_LIMIT", default=500),
    "catch_up": False,
    "label": "Task queue",
    "cache": "default",
    "sync": env.bool("Q_SYNC", default=False),
    # The ORM broker's pusher checks for new tasks this often when its queue is empty: the
    # scheduler hands out work just in time, so this is the wait between an image and the next.
    "poll": env.float("Q_POLL", default=0.05),
    "bulk": env.int("Q_BULK", default=1),
    # Lets each node see its result backlog, to tell a wedged django-q monitor (generation.engine).
    "qsize": True,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Generation ------------------------------------------------------------------

GENERATION_MAX_ATTEMPTS = env.int("GENERATION_MAX_ATTEMPTS", default=3)
# Scheduler (generation/scheduler.py): images one user may have in flight at once (0 = only fair share).
MAX_RUNNING_PER_USER = env.int("MAX_RUNNING_PER_USER", default=0)
# Tasks per worker handed out ahead, so a worker finds its next image waiting (0 = none: fairest,
# but each image then waits for the broker's poll).
SCHEDULER_PREFETCH = env.float("SCHEDULER_PREFETCH", default=1.0)
# An attempt handed to the broker but not started by a worker in this time is handed on again.
SCHEDULER_DISPATCH_LEASE_SECONDS = env.int("SCHEDULER_DISPATCH_LEASE_SECONDS", default=20)
# Batches the scheduler looks at per round (the oldest first, within priority).
SCHEDULER_MAX_BATCHES = env.int("SCHEDULER_MAX_BATCHES", default=500)
# Liveness (generation/engine.py): each qcluster node's loop runs this often...
ENGINE_TICK_SECONDS = env.float("ENGINE_TICK_SECONDS", default=1.0)
ENGINE_REPAIR_EVERY_TICKS = env.int("ENGINE_REPAIR_EVERY_TICKS", default=5)
# A worker that finishes an image takes the next one the scheduler picks for its slot, within one
# task, for up to this long (and never so long that one more attempt could outlast the task timeout).
ENGINE_CHAIN_SECONDS = env.float("ENGINE_CHAIN_SECONDS", default=60.0)
# ...and a node whose heartbeat is older than this is dead: its claims and permits are handed on.
WORKER_DEAD_AFTER_SECONDS = env.int("WORKER_DEAD_AFTER_SECONDS", default=15)
# A result backlog in django-q that has not shrunk for this long means its monitor is wedged.
ENGINE_RESULTS_STALL_SECONDS = env.float("ENGINE_RESULTS_STALL_SECONDS", default=20.0)
# Storing an image: quick retries in the worker, then the answer is spooled and stored later
# (no second provider call), giving up after this many tries.
STORAGE_INLINE_RETRIES = env.int("STORAGE_INLINE_RETRIES", default=2)
STORAGE_MAX_TRIES = env.int("STORAGE_MAX_TRIES", default=30)
MAX_PROMPTS_PER_BATCH = env.int("MAX_PROMPTS_PER_BATCH", default=1000)
MAX_IMAGES_PER_PROMPT = env.int("MAX_IMAGES_PER_PROMPT", default=8)
MAX_PROMPT_LENGTH = env.int("MAX_PROMPT_LENGTH", default=4000)
THUMBNAIL_SIZE = env.int("THUMBNAIL_SIZE", default=256)
# Artificial latency of the offline renderer, to exercise progress and worker failure locally.
LOCAL_PROVIDER_DELAY = env.float("LOCAL_PROVIDER_DELAY", default=0.0)
# Share of the offline renderer's calls that fail with a transient error (fault injection; 0 = none).
LOCAL_PROVIDER_FAIL_RATE = env.float("LOCAL_PROVIDER_FAIL_RATE", default=0.0)
DEFAULT_PROVIDER = env.str("DEFAULT_PROVIDER", default="local")
# OpenAI-compatible gateway (/v1/images/generations): how long a call waits for its batch before
# answering 504 (the batch goes on), how often it looks, and how long its image `url`s stay valid.
GATEWAY_TIMEOUT_SECONDS = env.float("GATEWAY_TIMEOUT_SECONDS", default=300.0)
GATEWAY_POLL_SECONDS = env.float("GATEWAY_POLL_SECONDS", default=0.5)
GATEWAY_URL_TTL_SECONDS = env.int("GATEWAY_URL_TTL_SECONDS", default=3600)
# Calls one web process lets wait at once (each holds a thread: keep it below WEB_THREADS).
GATEWAY_MAX_WAITING = env.int("GATEWAY_MAX_WAITING", default=4)

# --- Image providers (generation/providers/, docs/providers.md) ---------------------------------

OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1").rstrip("/")
OPENAI_ORGANIZATION = env.str("OPENAI_ORGANIZATION", default="")
STABILITY_API_KEY = env.str("STABILITY_API_KEY", default="")
STABILITY_BASE_URL = env.str("STABILITY_BASE_URL", default="https://api.stability.ai").rstrip("/")
A1111_BASE_URL = env.str("A1111_BASE_URL", default="").rstrip("/")
A1111_AUTH = env.str("A1111_AUTH", default="")
REPLICATE_API_TOKEN = env.str("REPLICATE_API_TOKEN", default="")
REPLICATE_BASE_URL = env.str("REPLICATE_BASE_URL", default="https://api.replicate.com").rstrip("/")
# How long one provider call may take before it counts as a (retryable) timeout.
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=10.0)
PROVIDER_READ_TIMEOUT = env.float("PROVIDER_READ_TIMEOUT", default=120.0)
# Replicate: give up polling a prediction after this long (it is cancelled upstream).
REPLICATE_MAX_WAIT_SECONDS = env.int("REPLICATE_MAX_WAIT_SECONDS", default=240)
REPLICATE_POLL_SECONDS = env.float("REPLICATE_POLL_SECONDS", default=1.0)


def _provider_limits(name: str, concurrency: int, rpm: int) -> dict[str, int]:
    return {
        "concurrency": env.int(f"{name.upper()}_MAX_CONCURRENCY", default=concurrency),
        "rpm": env.int(f"{name.upper()}_RPM", default=rpm),
    }


# Cluster-wide limits per provider, enforced in the database across every worker (0 = no limit).
PROVIDER_LIMITS = {
    "local": _provider_limits("local", 0, 0),
    "openai": _provider_limits("openai", 8, 50),
    "stability": _provider_limits("stability", 8, 150),
    "automatic1111": _provider_limits("a1111", 1, 0),
    "replicate": _provider_limits("replicate", 8, 600),
}
# A 429 pauses its provider for exactly Retry-After (this when it sends none) and spends no
# attempt; a generation stays rate limited at most this long before it fails over or fails.
PROVIDER_DEFAULT_COOLDOWN_SECONDS = env.float("PROVIDER_DEFAULT_COOLDOWN_SECONDS", default=5.0)
GENERATION_RATE_LIMIT_BUDGET_SECONDS = env.int("GENERATION_RATE_LIMIT_BUDGET_SECONDS", default=600)
# Retries of transient failures: exponential backoff base * 2^(attempt-1), capped, with jitter.
GENERATION_RETRY_BASE_SECONDS = env.float("GENERATION_RETRY_BASE_SECONDS", default=2.0)
GENERATION_RETRY_MAX_SECONDS = env.float("GENERATION_RETRY_MAX_SECONDS", default=120.0)
# With the synchronous queue (Q_SYNC, tests), a retry due within this many seconds is waited for.
GENERATION_RETRY_INLINE_SECONDS = env.float("GENERATION_RETRY_INLINE_SECONDS", default=10.0)
# Estimated prices in USD (see generation/costs.py for the key format); PROVIDER_PRICES (JSON) overrides.
PROVIDER_PRICES: dict[str, float] = {
    "local": 0.0,
    "openai:dall-e-2:256x256": 0.016,
    "openai:dall-e-2:512x512": 0.018,
    "openai:dall-e-2:1024x1024": 0.02,
    "openai:dall-e-3:standard:1024x1024": 0.04,
    "openai:dall-e-3:standard": 0.08,
    "openai:dall-e-3:hd:1024x1024": 0.08,
    "openai:dall-e-3:hd": 0.12,
    "openai:gpt-image-1:low:1024x1024": 0.011,
    "openai:gpt-image-1:low": 0.016,
    "openai:gpt-image-1:medium:1024x1024": 0.042,
    "openai:gpt-image-1:medium": 0.063,
    "openai:gpt-image-1:high:1024x1024": 0.167,
    "openai:gpt-image-1:high": 0.25,
    "openai:gpt-image-1": 0.042,
    "openai:gpt-image-1:input_token": 0.000005,
    "openai:gpt-image-1:output_token": 0.00004,
    "openai:gpt-image-1-mini:low": 0.005,
    "openai:gpt-image-1-mini:medium": 0.011,
    "openai:gpt-image-1-mini:high": 0.036,
    "openai:gpt-image-1-mini": 0.011,
    "stability:core": 0.03,
    "stability:ultra": 0.08,
    "stability:sd3.5-large": 0.065,
    "stability:sd3.5-large-turbo": 0.04,
    "stability:sd3.5-medium": 0.035,
    "automatic1111": 0.0,
    "replicate:black-forest-labs/flux-schnell": 0.003,
    "replicate:black-forest-labs/flux-dev": 0.025,
    "replicate:black-forest-labs/flux-1.1-pro": 0.04,
    **env.json("PROVIDER_PRICES", default={}),
}
# Users' own provider keys are encrypted with a Fernet key derived from this secret.
PROVIDER_KEYS_SECRET = env.str("PROVIDER_KEYS_SECRET", default="") or SECRET_KEY
# Two-factor secrets are stored encrypted with a key derived from this; changing it turns 2FA off
# in effect for everyone (their codes stop matching), so set it once.
TOTP_KEYS_SECRET = env.str("TOTP_KEYS_SECRET", default="") or SECRET_KEY


# One attempt runs inside one django-q task: the provider calls (connect, then read; Replicate then
# polls its prediction up to REPLICATE_MAX_WAIT_SECONDS) and the quick storage retries.
PROVIDER_BUDGET_PARTS = {
    "PROVIDER_CONNECT_TIMEOUT": PROVIDER_CONNECT_TIMEOUT,
    "PROVIDER_READ_TIMEOUT": PROVIDER_READ_TIMEOUT,
    "REPLICATE_MAX_WAIT_SECONDS": REPLICATE_MAX_WAIT_SECONDS,
}
# Every provider call of one attempt together (imagegen.http.budget): a server that trickles its
# answer within the read timeout is cut off here, not by the task timeout killing the worker.
GENERATION_PROVIDER_BUDGET_SECONDS = float(sum(PROVIDER_BUDGET_PARTS.values()))
LONGEST_ATTEMPT_PARTS = {
    **PROVIDER_BUDGET_PARTS,
    # generation.runner waits 0.5 s, 1 s, 2 s... between storage tries.
    "STORAGE_INLINE_RETRIES waits": 0.5 * (2**STORAGE_INLINE_RETRIES - 1),
}
GENERATION_LONGEST_ATTEMPT_SECONDS = float(sum(LONGEST_ATTEMPT_PARTS.values()))


def _check_timeouts() -> None:
    """Refuse to start with timeouts that contradict each other (docs/operations.md, "Health checks").

    A task timeout shorter than the longest attempt kills workers that are only waiting for an
    answer. The broker re-delivers a task after Q_CLUSTER["retry"], so that must be longer than the
    task timeout too.
    """
    parts = LONGEST_ATTEMPT_PARTS
    longest_attempt = GENERATION_LONGEST_ATTEMPT_SECONDS
    if longest_attempt >= GENERATION_TASK_TIMEOUT:
        terms = " + ".join(f"{name} ({value:g})" for name, value in parts.items())
        raise ImproperlyConfigured(
            f"GENERATION_TASK_TIMEOUT ({GENERATION_TASK_TIMEOUT}) must be greater than the longest attempt, "
            f"{terms} = {longest_attempt:g} seconds, or workers are killed while they wait for an answer. "
            f"Raise GENERATION_TASK_TIMEOUT above {longest_attempt:g} or lower those settings."
        )
    retry, timeout = Q_CLUSTER["retry"], Q_CLUSTER["timeout"]
    if retry <= timeout:  # type: ignore[operator]
        raise ImproperlyConfigured(
            f"The broker's retry (GENERATION_TASK_TIMEOUT {timeout} + Q_RETRY_MARGIN = {retry}) must be greater "
            f"than the task timeout ({timeout}), or running tasks are delivered twice. Set Q_RETRY_MARGIN above 0."
        )


_check_timeouts()

# --- Outgoing HTTP (imagegen.http) -------------------------------------------------------

# Hosts that URLs from responses or users may point at although they resolve to private
# addresses (e.g. an image server on the LAN). Operator-configured provider URLs are always allowed.
OUTBOUND_ALLOWED_PRIVATE_HOSTS = env.list("OUTBOUND_ALLOWED_PRIVATE_HOSTS", default=[])

# Batch webhooks (generation/webhooks.py): hosts a webhook URL may name although they resolve to
# private addresses; only these may also use plain http (every other webhook URL must be https).
WEBHOOK_ALLOWED_HOSTS = [host.lower() for host in env.list("WEBHOOK_ALLOWED_HOSTS", default=[])]
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# The public origin of the site (https://imagegen.example.com), for links sent outside a request
# such as the batch URL in a webhook; empty sends the path alone.
SITE_URL = env.str("SITE_URL", default="").rstrip("/")

# --- Auth ----------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 24 * 3600)
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "generation:batch_list"
LOGOUT_REDIRECT_URL = "accounts:login"

# --- Internationalisation -----------------------------------------------------------------

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hant")
LANGUAGES = [("zh-hant", "繁體中文"), ("en", "English")]
# Off: a first visit to the portal gets LANGUAGE_CODE whatever the browser asks; the language
# switch (a cookie) or the profile's language then decides. On: follow the browser's Accept-Language.
LANGUAGE_FROM_BROWSER = env.bool("LANGUAGE_FROM_BROWSER", default=False)
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Taipei")
USE_I18N = True
USE_TZ = True

# --- Static and media files ---------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
# Django chmods saved files to these itself (its default, 0644, would ignore the umask above).
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Images are never served from a public URL: views check ownership first (see generation.views).
# No route serves this prefix; it only exists because Django requires a media URL.
MEDIA_URL = "/private-media/"

# Object storage (docs/deploy.md): with a bucket, images, thumbnails and derived files go to any
# S3-compatible store (AWS S3, MinIO, Ceph RGW, Cloudflare R2) so that every node serves them.
# The names are django-storages' own; credentials may also come from the usual AWS sources.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
    AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
    AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
    AWS_LOCATION = env.str("AWS_LOCATION", default="")
    # Path-style addressing works with every S3-compatible server; virtual hosts need DNS per bucket.
    AWS_S3_ADDRESSING_STYLE = env.str("AWS_S3_ADDRESSING_STYLE", default="path")
    AWS_S3_SIGNATURE_VERSION = "s3v4"
    AWS_DEFAULT_ACL = None  # objects stay private: the bucket's policy decides, never a public-read ACL
    AWS_QUERYSTRING_AUTH = True
    AWS_QUERYSTRING_EXPIRE = env.int("STORAGE_PRESIGNED_SECONDS", default=300)
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage"}
# Downloads redirect to a short-lived presigned URL of the store instead of streaming through the
# web process (the ownership check still comes first). Only meaningful with a bucket.
STORAGE_PRESIGNED_URLS = env.bool("STORAGE_PRESIGNED_URLS", default=False) and bool(AWS_STORAGE_BUCKET_NAME)

# --- REST API ---------------------------------------------------------------------------------

# Idempotency-Key on API POSTs (accounts.idempotency): how long a key's first response is replayed,
# and how long a duplicate arriving while the first is still running waits for it before a 409.
IDEMPOTENCY_TTL_HOURS = env.int("IDEMPOTENCY_TTL_HOURS", default=24)
IDEMPOTENCY_WAIT_SECONDS = env.float("IDEMPOTENCY_WAIT_SECONDS", default=5.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "imagegen.api.Pagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "imagegen.api.exception_handler",
    # The one throttle: api_requests_per_minute, counted atomically per user (accounts.ratelimits).
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.ApiRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "imagegen.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ImageGen API",
    "DESCRIPTION": "Batch AI image generation. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from the platform itself, so the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The API is documented as JSON; form posts are still accepted (curl -d, the browsable tests).
    "PARSER_WHITELIST": ["imagegen.parsers.LimitedJSONParser"],
    # Several serializers have a `status`: each choice set gets its own stable name (import paths, no app import).
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "generation.models.BatchStatus",
        "GenerationStatusEnum": "generation.models.GenerationStatus",
        "WebhookDeliveryStatusEnum": "generation.models.WebhookDeliveryStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "imagegen.openapi.add_error_responses",
    ],
}

# --- Security -------------------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
CSRF_COOKIE_HTTPONLY = True
# Every page loads its scripts and styles from our own origin; nothing inline, nothing third-party.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Inline style attributes (admin, Swagger UI) are allowed; inline scripts are not.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
# Health probes (run.py, systemd, a load balancer) talk plain HTTP to the app itself.
SECURE_REDIRECT_EXEMPT = [r"^health(/live|/ready)?$"]

# --- Reverse proxies ----------------------------------------------------------------------------

# Reverse proxies (IPs or CIDR networks) whose X-Forwarded-For/-Proto/-Host are believed; from
# anybody else these headers are removed (imagegen.proxy, applied in imagegen.wsgi). Empty: the
# TCP peer is the client and the scheme is what it connected with.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _entry in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_entry.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)."
        ) from None
if TRUSTED_PROXIES:
    # Only reaches Django from a trusted proxy: imagegen.proxy strips it from everyone else.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if env.bool("TRUST_X_FORWARDED_PROTO", default=False) and not TRUSTED_PROXIES:
    raise ImproperlyConfigured(
        "TRUST_X_FORWARDED_PROTO is replaced by TRUSTED_PROXIES: list the reverse proxy's address "
        "(e.g. TRUSTED_PROXIES=127.0.0.1) and remove TRUST_X_FORWARDED_PROTO."
    )

# --- Logging and errors -------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_DIR = Path(env.str("LOG_DIR", default=str(DATA_DIR / "logs")))
_private_dir(LOG_DIR)
# The file under LOG_DIR gets everything as JSON lines (request id, user id, batch id, duration).
# The terminal (stdout) gets warnings and errors only, unless LOG_CONSOLE_LEVEL says otherwise,
# as JSON or, by default on a terminal, as plain lines for reading by eye.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if sys.stdout.isatty() else "json")
LOG_CONSOLE_LEVEL = env.str("LOG_CONSOLE_LEVEL", default="WARNING")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "monitoring.logs.JsonFormatter"},
        "plain": {
            "()": "monitoring.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "level": LOG_CONSOLE_LEVEL,
        },
        # Web and worker processes share the file; this handler locks it so rotation is safe.
        "file": {
            "class": "concurrent_log_handler.ConcurrentRotatingFileHandler",
            "filename": str(LOG_DIR / "imagegen.log"),
            "maxBytes": env.int("LOG_FILE_MAX_BYTES", default=20 * 2**20),
            "backupCount": env.int("LOG_FILE_BACKUPS", default=10),
            "formatter": "json",
            "encoding": "utf-8",
        },
    },
    "root": {"handlers": ["console", "file"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "WARNING"},
        # 4xx answers ("Not Found: ...") are in the request log already; 5xx are still errors here.
        "django.request": {"level": "ERROR"},
    },
}

SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from monitoring.sentry import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production" if PRODUCTION else "development"),
        release=env.str("SENTRY_RELEASE", default="") or f"imagegen@{__version__}",
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

# --- Monitoring, alerts and backups ------------------------------------------------------------

# When set, GET /metrics needs `Authorization: Bearer <token>`; when empty it is open (keep it private).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Concurrent scrapes and dashboard viewers share one computation of the figures for this long.
METRICS_CACHE_SECONDS = env.float("METRICS_CACHE_SECONDS", default=5)
DASHBOARD_CACHE_SECONDS = env.float("DASHBOARD_CACHE_SECONDS", default=10)
# The dashboard's live state (queue, workers, alerts): shared only this long, so it stays live.
DASHBOARD_LIVE_SECONDS = env.float("DASHBOARD_LIVE_SECONDS", default=2)
# A page of a finished batch's images is kept in the shared cache under its ETag this long, so
# readers after the first skip reading and serialising its rows (0 = never kept).
FINISHED_PAGE_CACHE_SECONDS = env.int("FINISHED_PAGE_CACHE_SECONDS", default=300)
METRICS_RETENTION_DAYS = env.int("METRICS_RETENTION_DAYS", default=30)
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_COOLDOWN_MINUTES = env.int("ALERT_COOLDOWN_MINUTES", default=10)
ALERT_ERROR_RATE = env.float("ALERT_ERROR_RATE", default=0.05)
ALERT_ERROR_RATE_MINUTES = env.int("ALERT_ERROR_RATE_MINUTES", default=5)
ALERT_ERROR_RATE_MIN_REQUESTS = env.int("ALERT_ERROR_RATE_MIN_REQUESTS", default=20)
ALERT_QUEUE_AGE_SECONDS = env.int("ALERT_QUEUE_AGE_SECONDS", default=900)
ALERT_PROVIDER_FAILURE_RATE = env.float("ALERT_PROVIDER_FAILURE_RATE", default=0.5)
ALERT_PROVIDER_MIN_CALLS = env.int("ALERT_PROVIDER_MIN_CALLS", default=5)
ALERT_PROVIDER_MINUTES = env.int("ALERT_PROVIDER_MINUTES", default=15)
ALERT_PROVIDER_MIN_USERS = env.int("ALERT_PROVIDER_MIN_USERS", default=2)
ALERT_DISK_FREE_PERCENT = env.float("ALERT_DISK_FREE_PERCENT", default=10.0)
# Availability (monitoring.availability): the objective, and the canary batch the probe submits.
SLO_TARGET = env.float("SLO_TARGET", default=99.5)
API_LATENCY_SLO_MS = env.float("API_LATENCY_SLO_MS", default=500.0)
API_LATENCY_WINDOW_MINUTES = env.int("API_LATENCY_WINDOW_MINUTES", default=15)
API_LATENCY_MIN_REQUESTS = env.int("API_LATENCY_MIN_REQUESTS", default=50)
CANARY_ENABLED = env.bool("CANARY_ENABLED", default=True)
CANARY_INTERVAL_MINUTES = env.int("CANARY_INTERVAL_MINUTES", default=5)
CANARY_DEADLINE_SECONDS = env.int("CANARY_DEADLINE_SECONDS", default=120)
CANARY_USERNAME = env.str("CANARY_USERNAME", default="canary")
# Work waits, workers are alive, yet nothing started or finished for this long: readiness fails, `stall` fires.
STALL_ALERT_SECONDS = env.int("STALL_ALERT_SECONDS", default=120)
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(DATA_DIR / "backups")))
BACKUP_KEEP = env.int("BACKUP_KEEP", default=7)

# --- Admin account created by run.py --------------------------------------------------------

ADMIN_USERNAME = env.str("ADMIN_USERNAME", default="admin")
ADMIN_PASSWORD = env.str("ADMIN_PASSWORD", default="")

# The console backend prints whole messages, password-reset links included: development only.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
# EMAIL_URL (e.g. smtp+tls://user:password@mail.example.com:587) configures SMTP in one variable.
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ImageGen <noreply@localhost>")

# --- Accounts: sign-up, two-factor, quotas and rate limits (see docs/security.md) --------------

ALLOW_SIGNUP = env.bool("ALLOW_SIGNUP", default=False)
REQUIRE_2FA_FOR_STAFF = env.bool("REQUIRE_2FA_FOR_STAFF", default=False)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="ImageGen")
DEFAULT_DAILY_IMAGE_QUOTA = env.int("DEFAULT_DAILY_IMAGE_QUOTA", default=5000)
DEFAULT_MAX_IMAGES_PER_BATCH = env.int("DEFAULT_MAX_IMAGES_PER_BATCH", default=500)
DEFAULT_MAX_ACTIVE_BATCHES = env.int("DEFAULT_MAX_ACTIVE_BATCHES", default=25)
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="120/min")
# The portal's own calls (session-authenticated: live progress, thumbnails, images) count apart.
PORTAL_RATE_LIMIT = env.str("PORTAL_RATE_LIMIT", default="1200/min")
LOGIN_RATE_LIMIT = env.str("LOGIN_RATE_LIMIT", default="5/15min")
# Past this many failures an account is slowed down (addresses that failed on it wait), never locked.
LOGIN_ACCOUNT_FAILURE_LIMIT = env.str("LOGIN_ACCOUNT_FAILURE_LIMIT", default="10/15min")
# Counters live in Redis when REDIS_URL is set, else in the database; keys start with this prefix.
RATE_LIMIT_KEY_PREFIX = env.str("RATE_LIMIT_KEY_PREFIX", default=f"{CACHE_KEY_PREFIX}:rl")
