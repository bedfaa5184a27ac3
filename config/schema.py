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
    "413": "The request is larger than 1 MiB (16 MiB for profiles in bulk).",
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
            codes += ["413"] if path.endswith(("/events/", "/profiles/bulk/")) else []
            codes += ["429"] if path.endswith(("/auth/token/", "/segments/{id}/count/")) else []
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, {"description": DESCRIPTIONS[code], "content": reference})
    return result


# --- tags and summaries (issue 18): every operation under its resource, with a sentence a person reads
TAGS = {
    "": "index", "auth": "authentication", "orgs": "organizations", "actions": "actions",
    "action-templates": "action templates", "invocations": "invocations", "endpoint-limits": "endpoint limits",
    "secret-values": "secret values", "email-settings": "email settings", "journeys": "journeys", "runs": "runs",
    "events": "events", "profiles": "profiles", "members": "members", "invitations": "invitations",
    "api-keys": "API keys", "segments": "segments", "audit-log": "audit log",
}  # fmt: skip
SINGULAR = {
    "actions": "an action", "action-templates": "an action template", "invocations": "an invocation",
    "endpoint-limits": "an endpoint limit", "secret-values": "a secret value", "email-settings": "the email settings",
    "journeys": "a journey", "runs": "a run", "events": "an event", "profiles": "a profile", "members": "a member",
    "invitations": "an invitation", "api-keys": "an API key", "orgs": "the organization", "segments": "a segment",
    "audit-log": "an audit record",
}  # fmt: skip
VERBS = {"put": "Replace", "patch": "Update", "delete": "Delete"}
SAID = {  # where the rule's sentence would read oddly
    ("post", "/api/v1/auth/token/"): "Log in: a user token for a username and password",
    ("post", "/api/v1/auth/logout/"): "Log out: the user token stops working",
    ("post", "/api/v1/orgs/{org_slug}/action-templates/"): "Create an action from a template and its credentials",
    ("get", "/api/v1/orgs/{org_slug}/actions/{id}/export/"): "Export an action as JSON, without its secrets",
    ("post", "/api/v1/orgs/{org_slug}/actions/infer/"): "Draft an action from a sample request and response",
    ("post", "/api/v1/orgs/{org_slug}/invocations/replay/"): "Replay failed invocations",
    ("post", "/api/v1/orgs/{org_slug}/journeys/{id}/new-version/"): "Make a draft new version of a live journey",
    ("post", "/api/v1/orgs/{org_slug}/journeys/{id}/close/"): "Archive a journey (the former name of archive)",
    ("post", "/api/v1/orgs/{org_slug}/journeys/{id}/test/"): "Test a journey for a profile and an event",
    ("get", "/api/v1/orgs/{org_slug}/journeys/{id}/fields/"): "The fields a journey's expressions can use",
    ("post", "/api/v1/orgs/{org_slug}/profiles/bulk/"): "Create or merge up to 10,000 profiles",
    ("get", "/api/v1/orgs/{org_slug}/segments/{id}/count/"): "Count the profiles of a segment",
    ("get", "/api/v1/orgs/{org_slug}/audit-log/"): "List the configuration changes (audit log)",
    ("post", "/api/v1/orgs/{org_slug}/audit-log/{id}/restore/"): "Restore an action or a journey to a recorded version",
}


def _resource(path: str) -> tuple[str, list[str]]:
    """The resource a path is about and the segments after it (`/api/v1/orgs/{org}/journeys/{id}/test/`)."""
    parts = [p for p in path.removeprefix("/api/v1/").split("/") if p]
    if parts[:1] == ["orgs"] and len(parts) > 2:
        return parts[2], parts[3:]
    if parts[:1] == ["orgs"]:
        return "orgs", []
    return (parts[0] if parts else ""), parts[1:]


def _summary(resource: str, rest: list[str], method: str) -> str:
    one = SINGULAR.get(resource, resource)
    words = [p for p in rest if not p.startswith("{")]
    if words:  # an action on one object, or a part of it: POST .../journeys/{id}/publish/
        verb = words[-1].replace("-", " ").replace("_", " ")
        return f"{verb.capitalize()} of {one}" if method == "get" else f"{verb.capitalize()} {one}"
    if rest or resource in ("orgs", "email-settings"):
        return f"Get {one}" if method == "get" else f"{VERBS.get(method, method.upper())} {one}"
    plural = TAGS.get(resource, resource)
    return f"List {plural}" if method == "get" else f"Create {one}"


def tag_and_summarize(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    for path, operations in result.get("paths", {}).items():
        resource, rest = _resource(path)
        for method, operation in operations.items():
            operation["tags"] = [TAGS.get(resource, resource)]
            operation.setdefault("summary", SAID.get((method, path)) or _summary(resource, rest, method))
            if resource == "events" and method == "post" and not rest:
                _one_or_many(result, operation)
    return result


def _one_or_many(result: dict[str, Any], operation: dict[str, Any]) -> None:
    """POST .../events/ takes one event or a list of them: say so in the schema."""
    operation["summary"] = "Send one event, or a list of events"
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema")
    if schema and "oneOf" not in schema:
        content["schema"] = {"oneOf": [schema, {"type": "array", "items": schema, "maxItems": 1000}]}
