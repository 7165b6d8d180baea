"""OpenAPI post-processing: the one error shape, and every error status each operation can answer."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code, e.g. `quota_exceeded`."},
                "message": {"type": "string", "description": "What went wrong, in the caller's language."},
                "details": {"type": "object", "description": "Field names and limits the error is about."},
                "request_id": {"type": "string", "description": "Quote it when reporting a problem."},
            },
        }
    },
}
# Statuses any operation may answer, with why; added where the view's own schema does not say more.
COMMON_ERRORS = {
    "400": "Invalid input: a field, a query parameter, JSON nested too deep or too many form fields.",
    "401": "Missing, invalid, expired or revoked credentials.",
    "403": "Not allowed: e.g. staff without two-factor when it is required, or a missing CSRF token.",
    "404": "No such object (another user's objects are 404 too), or no such page.",
    "405": "This method is not allowed here.",
    "406": "The Accept header asks for a type this operation does not produce.",
    "413": "The request body is larger than the platform accepts.",
    "429": "A rate limit or a quota was reached; `Retry-After` says when to try again.",
    "500": "Our fault; it has been logged.",
}
BODY_ERRORS = {"415": "The request body has a content type this operation does not accept."}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}
REQUEST_ID = {"X-Request-ID": {"schema": {"type": "string"}, "description": "The id of this request."}}


# Every API POST takes an Idempotency-Key (accounts.idempotency, docs/api.md#idempotency).
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A unique key (1-255 printable ASCII characters) that makes a retry of this POST safe: "
    "the same key and request within 24 h replay the first response (with `Idempotent-Replayed: true`).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}
IDEMPOTENCY_ERRORS = {
    "409": "A request with this Idempotency-Key is still being processed (`idempotency_in_progress`).",
    "422": "This Idempotency-Key was already used with a different request (`idempotency_conflict`).",
}
REPLAYED = {"Idempotent-Replayed": {"schema": {"type": "string"}, "description": "`true` on a replayed response."}}


# Request bodies where two fields may not be given together (enforced by their serializers).
EXCLUSIVE_FIELDS = {"TokenCreateRequest": ("expires_at", "expires_in_days")}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the error shape on every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name, fields in EXCLUSIVE_FIELDS.items():
        if name in schemas:
            schemas[name]["not"] = {"required": list(fields)}
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            errors = {**COMMON_ERRORS, **(BODY_ERRORS if "requestBody" in operation else {})}
            if method == "post" and path.startswith("/api/v1/"):
                _add_idempotency(operation)
                errors.update(IDEMPOTENCY_ERRORS)
            responses = operation.setdefault("responses", {})
            for status, description in errors.items():
                response = responses.setdefault(status, {"description": description})
                response.setdefault("content", error_content)
                if status == "429":
                    response.setdefault("headers", RETRY_AFTER)
    return result


def _add_idempotency(operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    if not any(parameter.get("name") == IDEMPOTENCY_KEY["name"] for parameter in parameters):
        parameters.append(IDEMPOTENCY_KEY)
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2"):
            response.setdefault("headers", {}).update(REPLAYED)
