"""Loaded with `-p` before Django starts: per-worker names for what parallel test runs share.

Parallel pytest-xdist workers have their own databases, but a Redis broker is one server: each
worker gets its own django-q cluster name, so its queue and cluster heartbeats are its own, and
the clusters its integration tests start (which inherit the environment) use them too.
"""

import os

os.environ["Q_CLUSTER_NAME"] = f"imagegen-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
