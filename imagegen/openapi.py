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
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            errors = {**COMMON_ERRORS, **(BODY_ERRORS if "requestBody" in operation else {})}
            responses = operation.setdefault("responses", {})
            for status, description in errors.items():
                response = responses.setdefault(status, {"description": description})
                response.setdefault("content", error_content)
                if status == "429":
                    response.setdefault("headers", RETRY_AFTER)
    return result
