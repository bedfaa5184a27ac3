"""Every write to actions, for the admin and the API alike (one service, two doors)."""

import base64
import binascii
import copy
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_date, parse_datetime

from actions import auth as auth_module
from actions import rendering
from actions.calling import CallResult, call_action, render
from actions.models import Action, generate_signing_secret
from actions.selectors import IN_USE, action_usage, parameter_changes_that_break
from config.exceptions import Conflict
from tenants.models import Organization

EDITABLE_FIELDS = [
    "name", "description", "status", "method", "url", "query", "headers", "body", "parameters",
    "response_schema", "timeout_ms", "max_retries", "rate_limit_calls", "rate_limit_period_s",
    "on_rate_limit", "client_certificate",
]  # fmt: skip
SIGNING_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=]+$")


def _add(errors: dict, field: str, problems: list[str] | str) -> None:
    problems = [problems] if isinstance(problems, str) else problems
    if problems:
        errors.setdefault(field, []).extend(problems)


def _validate_signing_secret(value: str) -> list[str]:
    if not SIGNING_SECRET.match(value):
        return ['must be a Standard Webhooks secret: "whsec_" followed by base64, or "generate"']
    try:
        raw = base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return ["the part after whsec_ is not valid base64"]
    return [] if 24 <= len(raw) <= 64 else ["must hold between 24 and 64 random bytes"]


def _validate_certificate(certificate: str, key: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not certificate and not key:
        return errors
    if certificate and not key:
        _add(errors, "client_key", "a client certificate needs its private key")
    if key and not certificate:
        _add(errors, "client_certificate", "a private key needs its certificate")
    if certificate:
        try:
            x509.load_pem_x509_certificate(certificate.encode())
        except ValueError:
            _add(errors, "client_certificate", "not a PEM certificate (-----BEGIN CERTIFICATE-----)")
    if key:
        try:
            load_pem_private_key(key.encode(), password=None)
        except (ValueError, TypeError):
            _add(errors, "client_key", "not an unencrypted PEM private key")
    return errors


def _apply(action: Action, data: dict[str, Any]) -> dict[str, list[str]]:
    """Copy `data` onto `action`; return problems with the secret-bearing inputs."""
    errors: dict[str, list[str]] = {}
    for name in EDITABLE_FIELDS:
        if name in data:
            setattr(action, name, data[name])
    if "auth" in data:
        auth = data["auth"]
        problems = auth_module.validate_auth(
            auth, allow_http=action.organization.allow_http,
            stored_type=action.auth_type if action.pk else None, stored_secrets=action.auth_secrets or {},
        )  # fmt: skip
        if problems:
            _add(errors, "auth", problems)
        else:
            action.auth_type, action.auth_config, action.auth_secrets = auth_module.split_auth(
                auth,
                stored_type=action.auth_type if action.pk else None,
                stored_secrets=action.auth_secrets or {},
            )
    secret = data.get("signing_secret")
    if secret == "generate":
        action.previous_signing_secret, action.signing_secret = "", generate_signing_secret()
    elif secret:
        problems = _validate_signing_secret(secret)
        if problems:
            _add(errors, "signing_secret", problems)
        else:
            action.signing_secret = secret
    if data.get("clear_signing_secret"):
        action.signing_secret = action.previous_signing_secret = ""
    if data.get("client_key"):
        action.client_key = data["client_key"]
    if data.get("clear_client_certificate"):
        action.client_certificate = action.client_key = ""
    return errors


def validate_action(action: Action) -> dict[str, list[str]]:
    """Every problem with an action as it would be saved, by field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(action.name, str) or not action.name.strip():
        _add(errors, "name", "an action needs a name")
    if action.method not in rendering.METHODS:
        _add(errors, "method", f"must be one of {', '.join(rendering.METHODS)}")
    for field in ("name", "description", "url", "method", "status", "client_certificate", "on_rate_limit"):
        if not isinstance(getattr(action, field), str):
            _add(errors, field, "must be text")
            setattr(action, field, "")
    parameter_problems = rendering.validate_parameters(action.parameters)
    _add(errors, "parameters", parameter_problems)
    parameters = action.parameters if isinstance(action.parameters, list) else []
    declared = {p["name"] for p in parameters if isinstance(p, dict) and isinstance(p.get("name"), str)}
    _add(
        errors,
        "url",
        rendering.validate_url(action.url, allow_http=action.organization.allow_http, declared=declared),
    )
    _add(errors, "query", rendering.validate_pairs(action.query, kind="query", declared=declared))
    _add(errors, "headers", rendering.validate_pairs(action.headers, kind="header", declared=declared))
    _add(errors, "body", rendering.validate_body(action.body, declared=declared))
    if action.method == "GET" and action.body is not None:
        _add(errors, "body", "a GET request has no body; use query parameters")
    if action.response_schema is not None and not isinstance(action.response_schema, dict):
        _add(errors, "response_schema", "must be a JSON Schema object")
    if (action.rate_limit_calls is None) != (action.rate_limit_period_s is None):
        field = "rate_limit_period_s" if action.rate_limit_period_s is None else "rate_limit_calls"
        _add(errors, field, "give both the number of calls and the period, or neither")
    for field, problems in _validate_certificate(action.client_certificate, action.client_key).items():
        _add(errors, field, problems)
    if action.status == Action.Status.ACTIVE:
        spec = auth_module.AUTH_SPECS.get(action.auth_type)
        for path in spec.secrets if spec else ():
            if auth_module._get(action.auth_secrets or {}, path) in (None, ""):
                _add(errors, "auth", f"{path}: required before the action can be active")
    try:
        action.full_clean(exclude=["organization", "query", "headers", "body", "parameters", "url", "name"])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            _add(errors, field, messages)
    duplicate = Action.objects.filter(organization=action.organization, name=action.name).exclude(pk=action.pk)
    if duplicate.exists():
        _add(errors, "name", f'this organization already has an action named "{action.name}"')
    if not parameter_problems and not errors:
        action.parameters = rendering.normalize_parameters(action.parameters)
    return errors


def _save(action: Action, errors: dict) -> Action:
    errors = {**errors}
    for field, problems in validate_action(action).items():
        _add(errors, field, problems)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            action.save()
    except IntegrityError:
        raise ValidationError({"name": [f'this organization already has an action named "{action.name}"']}) from None
    return action


@transaction.atomic
def action_create(*, organization: Organization, data: dict[str, Any], user: Any = None) -> Action:
    action = Action(organization=organization, created_by=user if getattr(user, "pk", None) else None)
    return _save(action, _apply(action, data))


@transaction.atomic
def action_update(*, action: Action, data: dict[str, Any]) -> Action:
    action = Action.objects.select_for_update().get(pk=action.pk)
    before = list(action.parameters)
    errors = _apply(action, data)
    if "parameters" in data and isinstance(action.parameters, list):
        _refuse_breaking_live_journeys(action, before)
    return _save(action, errors)


def _refuse_breaking_live_journeys(action: Action, before: list[dict]) -> None:
    """SPEC section 2: a live journey's mapping must keep working; such an edit is a 409 naming them."""
    changes = parameter_changes_that_break(before, action.parameters)
    if not changes:
        return
    live = [u for u in action_usage(action=action) if u["status"] in IN_USE]
    if live:
        names = ", ".join(f"{u['name']} (v{u['version']})" for u in live)
        raise Conflict(
            f"This edit {'; '.join(changes)}, which the live journeys {names} rely on.",
            {"parameters": [f"Used by live journeys: {names}."]},
        )


def action_rotate_signing_secret(*, action: Action) -> Action:
    """A new secret; the old one keeps signing beside it until the rotation is finished."""
    action.previous_signing_secret = action.signing_secret
    action.signing_secret = generate_signing_secret()
    action.save(update_fields=["signing_secret", "previous_signing_secret", "updated_at"])
    return action


def action_finish_signing_rotation(*, action: Action) -> Action:
    action.previous_signing_secret = ""
    action.save(update_fields=["previous_signing_secret", "updated_at"])
    return action


def action_delete(*, action: Action) -> None:
    """A journey that is live or paused still calls it (and its runs wait on its calls): a 409."""
    live = [u for u in action_usage(action=action) if u["status"] in IN_USE]
    if live:
        names = ", ".join(f"{u['name']} (v{u['version']})" for u in live)
        raise Conflict(f"The journeys {names} use this action: stop them first, or archive it later.",
                       {"action": [f"Used by journeys: {names}."]})  # fmt: skip
    action.delete()


def _free_name(organization: Organization, name: str) -> str:
    candidate, n = name, 1
    while Action.objects.filter(organization=organization, name=candidate).exists():
        n += 1
        candidate = f"{name} ({n})"
    return candidate


def action_export(*, action: Action) -> dict[str, Any]:
    """The configuration as JSON, without any secret, to move between organizations."""
    exported = {name: copy.deepcopy(getattr(action, name)) for name in EDITABLE_FIELDS if name != "status"}
    exported["auth"] = {"type": action.auth_type, **copy.deepcopy(action.auth_config)}
    exported["format"] = "conduit.action.v1"
    return exported


@transaction.atomic
def action_import(*, organization: Organization, data: dict[str, Any], user: Any = None) -> Action:
    """Create a draft from an export; secrets are entered again before it can be active."""
    if not isinstance(data, dict) or data.get("format") != "conduit.action.v1":
        raise ValidationError({"format": ['not a Conduit action export (format "conduit.action.v1")']})
    unknown = sorted(set(data) - set(EDITABLE_FIELDS) - {"auth", "format"})
    if unknown:
        raise ValidationError({name: ["unknown field"] for name in unknown})
    fields = {k: v for k, v in data.items() if k in EDITABLE_FIELDS and k != "status"}
    fields["name"] = _free_name(organization, str(fields.get("name") or "Imported action"))
    action = Action(organization=organization, status=Action.Status.DRAFT, created_by=user)
    errors = _apply(action, fields)
    auth = data.get("auth") or {"type": "none"}
    problems = auth_module.validate_auth(auth, allow_http=organization.allow_http, stored_type=None, stored_secrets={})
    problems = [p for p in problems if not any(p.startswith(f"{s}:") for s in _secret_paths(auth))]
    if problems:
        _add(errors, "auth", problems)
    else:
        action.auth_type, action.auth_config, action.auth_secrets = auth_module.split_auth(
            auth, stored_type=None, stored_secrets={}
        )
    return _save(action, errors)


def _secret_paths(auth: Any) -> tuple[str, ...]:
    spec = auth_module.AUTH_SPECS.get(auth.get("type") if isinstance(auth, dict) else None)
    return spec.all_secrets if spec else ()


@transaction.atomic
def action_duplicate(*, action: Action, user: Any = None) -> Action:
    """A draft copy with the same configuration and secrets, under a free name."""
    copy_ = Action.objects.get(pk=action.pk)
    copy_.pk = None
    copy_.name = _free_name(action.organization, f"{action.name} (copy)")
    copy_.status = Action.Status.DRAFT
    copy_.created_by = user if getattr(user, "pk", None) else None
    copy_.save()
    return copy_


def action_test(*, action: Action, values: dict[str, Any]) -> CallResult:
    """One real call with the values given (the test button)."""
    try:
        rendered = render(action, values)
    except rendering.RenderError as exc:
        raise ValidationError({"parameters": list(exc.errors.values())}) from None
    return call_action(action, rendered)


# --- from a sample payload ----------------------------------------------------------


def infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        try:
            if re.match(r"^\d{4}-\d{2}-\d{2}T", value) and parse_datetime(value):
                return "datetime"
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) and parse_date(value):
                return "date"
        except ValueError:
            pass
    return "string"


def sample_fields(sample: Any, prefix: str = "") -> list[dict[str, Any]]:
    """The leaves of a sample payload with inferred types; lists count as one field."""
    fields = []
    if isinstance(sample, dict):
        for key, value in sample.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                fields += [{**f, "keys": [key, *f["keys"]]} for f in sample_fields(value, path)]
            else:
                fields.append({"path": path, "keys": [key], "type": infer_type(value), "example": value})
    return fields


def body_from_sample(sample: Any, chosen: list[str]) -> tuple[Any, list[dict[str, Any]]]:
    """Turn the chosen fields of a sample into placeholders; the rest stay constants."""
    if not isinstance(sample, dict | list):
        raise ValidationError({"sample": ["paste a JSON object or array"]})
    known = {f["path"]: f for f in sample_fields(sample)}
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise ValidationError({"parameters": [f"{p}: not a field of the sample" for p in unknown]})
    body, parameters, names = copy.deepcopy(sample), [], set()
    for path in chosen:
        base = re.sub(r"\W", "_", str(known[path]["keys"][-1])) or "value"
        name, n = (base if re.match(r"^[A-Za-z_]", base) else f"p_{base}"), 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.add(name)
        *parents, last = known[path]["keys"]  # keys, not the dotted path: a key may hold a dot
        target = body
        for part in parents:
            target = target[part]
        example = target[last]
        target[last] = "{{" + name + "}}"
        parameters.append(
            {"name": name, "type": known[path]["type"], "required": True, "default": None,
             "description": f"{path}, e.g. {example!r}"[:200]}
        )  # fmt: skip
    return body, parameters


def schema_from_sample(sample: Any) -> dict[str, Any]:
    """A JSON Schema describing a sample response."""
    kind = infer_type(sample)
    if isinstance(sample, dict):
        return {"type": "object", "properties": {k: schema_from_sample(v) for k, v in sample.items()}}
    if isinstance(sample, list):
        return {"type": "array", "items": schema_from_sample(sample[0])} if sample else {"type": "array"}
    if sample is None:
        return {"type": "null"}
    mapping = {"boolean": "boolean", "integer": "integer", "decimal": "number"}
    if kind in mapping:
        return {"type": mapping[kind]}
    if kind == "datetime":
        return {"type": "string", "format": "date-time"}
    if kind == "date":
        return {"type": "string", "format": "date"}
    return {"type": "string"}
