"""Checking one node's deployment against the others: same secret, broker, database and object store.

Every node that runs `manage.py check_deploy` records fingerprints of its configuration (hashes,
never the secrets) in the shared database, then compares them with the other nodes seen
recently. A node that signs tasks with another SECRET_KEY, enqueues into another Redis or
writes images to its own disk is found before users see broken images or lost tasks.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from imagegen import __version__
from monitoring.health import run_checks, storage_location
from monitoring.models import DeployNode

# What must be identical on every node, with what goes wrong when it is not.
MUST_MATCH = {
    "secret_key": "tasks signed on one node are rejected by the others, sessions and reset links break",
    "provider_keys_secret": "users' own provider keys saved on one node cannot be decrypted on the others",
    "database": "nodes do not see each other's batches",
    "broker": "work enqueued on one node is never picked up by the others' workers",
    "storage": "images made on one node cannot be served by the others",
    "provider_limits": "provider caps and rate limits are not the same cluster-wide",
    "version": "nodes run different releases (finish the rolling upgrade)",
}


@dataclass(frozen=True)
class Finding:
    ok: bool
    name: str
    detail: str


def fingerprint(value: str) -> str:
    """A short, salted hash: equal values compare equal, the value itself cannot be read back."""
    return hashlib.sha256(f"imagegen-deploy:{value}".encode()).hexdigest()[:16]


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = f"{parts.hostname or ''}:{parts.port or ''}"
    return f"{parts.scheme}://{host}{parts.path}"


def node_fingerprints() -> dict[str, str]:
    db = connection.settings_dict
    database = f"{connection.vendor}:{db.get('HOST') or ''}:{db.get('PORT') or ''}/{db['NAME']}"
    broker = (
        f"redis {_without_password(settings.REDIS_URL)}" if settings.REDIS_URL else f"orm {database}"
    ) + f" queue {settings.Q_CLUSTER['name']}"
    limits = ",".join(f"{name}={v['concurrency']}/{v['rpm']}" for name, v in sorted(settings.PROVIDER_LIMITS.items()))
    return {
        "secret_key": fingerprint(settings.SECRET_KEY),
        "provider_keys_secret": fingerprint(settings.PROVIDER_KEYS_SECRET),
        "database": fingerprint(database),
        "broker": fingerprint(broker),
        "storage": fingerprint(storage_location()),
        "provider_limits": fingerprint(limits),
        "version": __version__,
    }


def default_node_name() -> str:
    return f"{socket.gethostname()}:{settings.DATA_DIR}"


def deploy_check(*, node: str, recent: timedelta = timedelta(days=7)) -> list[Finding]:
    """Check this node's dependencies, record its fingerprints, and compare them with its peers'."""
    findings = _local_findings()
    mine = node_fingerprints()
    DeployNode.objects.update_or_create(
        name=node, defaults={"version": __version__, "fingerprints": mine, "checked_at": timezone.now()}
    )
    peers = list(DeployNode.objects.filter(checked_at__gte=timezone.now() - recent).exclude(name=node))
    if not peers:
        hours = round(recent.total_seconds() / 3600)
        detail = f"no other node ran check_deploy in the last {hours} h; run it on every node"
        return [*findings, Finding(True, "other nodes", detail)]
    names = ", ".join(peer.name for peer in peers)
    findings.append(Finding(True, "other nodes", f"{len(peers)}: {names}"))
    for key, consequence in MUST_MATCH.items():
        differing = [peer.name for peer in peers if peer.fingerprints.get(key) != mine[key]]
        if differing:
            findings.append(Finding(False, f"same {key}", f"differs on {', '.join(differing)}: {consequence}"))
        else:
            findings.append(Finding(True, f"same {key}", f"as every other node ({mine[key]})"))
    return [*findings, *_shared_findings()]


def _local_findings() -> list[Finding]:
    findings = [
        Finding(result.ok, name, result.detail)
        for name, result in run_checks(["database", "cache", "queue", "storage"]).items()
    ]
    executor = MigrationExecutor(connections["default"])
    unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    detail = f"{len(unapplied)} migration(s) not applied: run `manage.py bootstrap`" if unapplied else "all applied"
    findings.append(Finding(not unapplied, "migrations", detail))
    return findings


def _shared_findings() -> list[Finding]:
    """With more than one node, what only works on a single machine."""
    return [
        Finding(
            bool(settings.AWS_STORAGE_BUCKET_NAME),
            "shared storage",
            "object store" if settings.AWS_STORAGE_BUCKET_NAME else "images are on this node's disk: set AWS_*",
        ),
        Finding(
            connection.vendor == "postgresql",
            "shared database",
            connection.vendor if connection.vendor == "postgresql" else "SQLite cannot be shared: set DATABASE_URL",
        ),
        Finding(
            bool(settings.REDIS_URL),
            "shared broker and cache",
            "Redis" if settings.REDIS_URL else "no REDIS_URL: the cache and rate limits are per machine",
        ),
    ]
