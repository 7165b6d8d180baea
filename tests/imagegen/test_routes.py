"""imagegen/routes.py: a route reversed once gives each object's link."""

from __future__ import annotations

import uuid

from django.test import RequestFactory

from imagegen.routes import url_maker


def test_a_url_maker_gives_the_reversed_route_for_each_id() -> None:
    some_id = uuid.uuid4()
    assert url_maker("generation:batch_detail")(some_id) == f"/batches/{some_id}/"


def test_with_a_request_the_link_is_absolute() -> None:
    some_id = uuid.uuid4()
    request = RequestFactory().get("/", HTTP_HOST="testserver")
    assert url_maker("api-batch-detail", request)(some_id) == f"http://testserver/api/v1/batches/{some_id}/"
