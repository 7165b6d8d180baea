"""The OpenAPI document describes what the API does: schemathesis drives every operation through the
WSGI application (no server, no port), authenticated, and checks status codes, content types,
response bodies and which requests are accepted, against the schema the platform serves.

Bounded here (a few examples per operation); the long run is `benchmarks/schemathesis_long.sh`.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

from accounts.idempotency import key_is_valid
from imagegen.wsgi import application

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))


def _schema() -> Any:
    loaded = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    loaded.app = application
    return loaded


schema = _schema()


@pytest.fixture
def bearer(owner: Any, settings: Any) -> dict[str, str]:
    from accounts.services import token_create

    settings.API_RATE_LIMIT = "100000/min"
    settings.ALLOWED_HOSTS = ["*"]
    return {"Authorization": f"Bearer {token_create(user=owner, name='schemathesis').secret}"}


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_does_what_the_schema_says(case: Any, bearer: dict[str, str]) -> None:
    case.call_and_validate(headers={**_unique_idempotency_key(case.headers or {}), **bearer})


def _unique_idempotency_key(headers: dict[str, str]) -> dict[str, str]:
    """Each case is a new request: a valid generated Idempotency-Key gets a unique suffix, so cases with
    other bodies do not collide on it (that is a 422 `idempotency_conflict`, tested on its own)."""
    key = headers.get("Idempotency-Key")
    if key is None or not key_is_valid(key):
        return headers
    return {**headers, "Idempotency-Key": f"{key[:200]}-{uuid.uuid4().hex}"}
