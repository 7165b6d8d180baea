"""Conditional GETs for the API: weak ETags from what a response depends on, and 304 for a match.

An ETag here is computed from the few fields that decide a response (counters, statuses,
timestamps), never from the serialised body, so a 304 costs no serialisation.
"""

from __future__ import annotations

import hashlib
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from imagegen.shared_cache import cache_get, cache_set

IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    str,
    OpenApiParameter.HEADER,
    description="The `ETag` of a copy you hold: 304 Not Modified (no body) while it is still current.",
)
NOT_MODIFIED = OpenApiResponse(description="Not modified: the copy whose ETag was sent is still current.")


def weak_etag(*parts: Any) -> str:
    """`W/"<hash>"` of the parts (their repr: the same values always give the same tag)."""
    return 'W/"' + hashlib.sha256(repr(parts).encode()).hexdigest()[:32] + '"'


def matches(request: Request, etag: str) -> bool:
    """If-None-Match names this tag (weak comparison, as RFC 9110 asks for If-None-Match) or is `*`."""
    header = request.headers.get("If-None-Match", "")
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == wanted for tag in tags)


def conditional(request: Request, etag: str | None, build: Any, *, keep_seconds: int = 0) -> Response:
    """304 when the client's copy is current, else the response `build()` makes, tagged with `etag`.

    With `keep_seconds`, the body of a tagged 200 is kept that long in the shared cache under its
    tag, and the next request with the same tag (any client, with or without If-None-Match) gets
    it from there without `build()`. Only for tags that name everything the body depends on (the
    owner, the URL and the rows' state), as finished batches' tags do.
    """
    if etag is None:
        response: Response = build()
        return response
    if matches(request, etag):
        return tagged(Response(status=status.HTTP_304_NOT_MODIFIED), etag)
    kept = cache_get(_body_key(etag)) if keep_seconds > 0 else None
    if kept is not None:
        return tagged(Response(kept), etag)
    response = build()
    if keep_seconds > 0 and response.status_code == status.HTTP_200_OK:
        cache_set(_body_key(etag), response.data, keep_seconds)
    return tagged(response, etag)


def _body_key(etag: str) -> str:
    return "etag-body:" + etag.removeprefix("W/").strip('"')


def tagged(response: Response, etag: str) -> Response:
    response["ETag"] = etag
    # Private to the caller, and checked with us before each reuse.
    response["Cache-Control"] = "private, no-cache"
    return response
