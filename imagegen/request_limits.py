"""Request limits enforced before a view runs: the declared length, uploads as they stream, NUL in queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http import HttpRequest, HttpResponse, QueryDict

from imagegen.api import bad_request


class RequestSizeLimitMiddleware:
    """Answer 413 at once when Content-Length exceeds MAX_REQUEST_BYTES, without reading the body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > settings.MAX_REQUEST_BYTES:
            return bad_request(request, RequestDataTooBig("Content-Length over MAX_REQUEST_BYTES"))
        if "%00" in request.META.get("QUERY_STRING", ""):
            request.GET = without_nul(request.GET)  # type: ignore[assignment]  # immutable, as Django makes it
        return self.get_response(request)


def without_nul(query: QueryDict) -> QueryDict:
    """The query parameters with NUL characters taken out: no filter or search means one, and
    PostgreSQL refuses them in any text it is asked to compare (a 500 instead of an empty list)."""
    cleaned = QueryDict(mutable=True)
    for name, values in query.lists():
        cleaned.setlist(name.replace("\x00", ""), [value.replace("\x00", "") for value in values])
    cleaned._mutable = False
    return cleaned


class LimitedUploadHandler(MemoryFileUploadHandler):
    """Keep uploads in memory and stop reading one as soon as it passes MAX_UPLOAD_BYTES.

    Uploads on this platform are small text files of prompts; Django's own handlers would first
    spool a file of any size to disk and let the form refuse it afterwards.
    """

    def handle_raw_input(self, *args: Any, **kwargs: Any) -> None:
        super().handle_raw_input(*args, **kwargs)
        self.activated = True  # always in memory: the cap below keeps it small
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.MAX_UPLOAD_BYTES:
            raise RequestDataTooBig("Upload over MAX_UPLOAD_BYTES")
        return super().receive_data_chunk(raw_data, start)
