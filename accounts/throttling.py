"""DRF throttle: api_requests_per_minute for token clients, portal_requests_per_minute for the portal.

The portal's own pages call the API with the browser session (live progress, thumbnails, images);
they get their own, generous limit so that a person watching a batch never throttles themselves,
while scripts with a bearer token keep the API limit.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.ratelimits import rate_limit_enforce


class ApiRateThrottle(BaseThrottle):
    """Counts per user in the shared store; over the limit it raises `rate_limited` with Retry-After.

    When the store is down, reads (GET, HEAD, OPTIONS) go through uncounted and are logged; writes
    get `rate_limit_unavailable` (503), so nothing that costs money escapes the limit.
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return True  # anonymous calls are refused by authentication, or limited as logins
        portal = isinstance(request.successful_authenticator, SessionAuthentication)
        hit = rate_limit_enforce(
            name="portal_requests_per_minute" if portal else "api_requests_per_minute",
            ident=f"{'portal-user' if portal else 'user'}:{request.user.pk}",
            fail_open=request.method in SAFE_METHODS,
        )
        if hit is not None:
            request._request.rate_limit_hit = hit  # type: ignore[attr-defined]  # read by RateLimitHeadersMiddleware
        return True
