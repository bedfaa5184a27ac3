"""OpenAPI post-processing: every operation documents the error answers it can give, in the one
error shape of config/common/errors.py, so that clients (and schemathesis) know every status to expect."""

from typing import Any

ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in a sentence."},
        "errors": {"type": "object", "additionalProperties": True, "description": "Problems by field."},
    },
    "required": ["detail", "errors"],
}
DESCRIPTIONS = {
    "400": "Invalid input: `errors` names each field.",
    "401": "Not authenticated.",
    "403": "Your role or the API key's scopes do not allow this.",
    "404": "No such organization or object (or not yours).",
    "409": "Refused in the current state (`detail` says why).",
    "413": "The request is larger than 1 MiB.",
    "429": "Too many requests: wait and try again.",
}
WRITES = {"post", "put", "patch", "delete"}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            codes = ["400", "401", "403", "404"]
            codes += ["409"] if method in WRITES else []
            codes += ["413"] if path.endswith("/events/") else []
            codes += ["429"] if path.endswith("/auth/token/") else []
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, {"description": DESCRIPTIONS[code], "content": reference})
    return result
