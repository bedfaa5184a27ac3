"""Every write to actions, for the admin and the API alike (one service, two doors)."""

import base64
import binascii
import copy
import re
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from actions.delivery import auth as auth_module
from actions.delivery import emails, rendering
from actions.delivery.calls import CallResult, call_action, render
from actions.delivery.template_bounds import TEMPLATE_BOUNDS, template_bounds
from actions.models import Action, EmailSettings, SecretValue, generate_signing_secret
from actions.runtime import held_calls_release
from actions.selectors import IN_USE, action_usage, parameter_changes_that_break
from actions.send_windows import send_window_problems
from actions.services import credential_hosts
from actions.services.categories import categories_problems
from config.common.exceptions import Conflict
from config.common.problems import add_problems as add
from config.common.problems import merge_problems
from tenants.models import Organization

__all__ = [
    "EDITABLE_FIELDS",
    "action_check",
    "action_create",
    "action_delete",
    "action_duplicate",
    "action_export",
    "action_import",
    "action_test",
    "action_update",
    "action_update_trial",
    "free_action_name",
    "validate_action",
]

EDITABLE_FIELDS = [
    "name", "description", "status", "kind", "method", "url", "query", "headers", "body", "body_type", "email",
    "parameters",
    "response_schema", "timeout_ms", "max_retries", "rate_limit_calls", "rate_limit_period_s",
    "on_rate_limit", "client_certificate",
    "send_window", "categories",
]  # fmt: skip
# Checked above with messages of their own; full_clean would repeat them in its words.
JSON_CHECKED_FIELDS = [
    "query", "headers", "body", "parameters", "url", "name", "kind", "body_type", "email", "send_window",
    "categories",
]  # fmt: skip
SIGNING_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=]+$")


def _validate_signing_secret(value: str) -> list[str]:
    if not SIGNING_SECRET.match(value):
        return [_('must be a Standard Webhooks secret: "whsec_" followed by base64, or "generate"')]
    try:
        raw = base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return [_("the part after whsec_ is not valid base64")]
    return [] if 24 <= len(raw) <= 64 else [_("must hold between 24 and 64 random bytes")]


def _validate_certificate(certificate: str, key: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not certificate and not key:
        return errors
    if certificate and not key:
        add(errors, "client_key", _("a client certificate needs its private key"))
    if key and not certificate:
        add(errors, "client_certificate", _("a private key needs its certificate"))
    if certificate:
        try:
            x509.load_pem_x509_certificate(certificate.encode())
        except ValueError:
            add(errors, "client_certificate", _("not a PEM certificate (-----BEGIN CERTIFICATE-----)"))
    if key:
        try:
            load_pem_private_key(key.encode(), password=None)
        except (ValueError, TypeError):
            add(errors, "client_key", _("not an unencrypted PEM private key"))
    return errors


def _apply(action: Action, data: dict[str, Any]) -> dict[str, list[str]]:
    """Copy `data` onto `action`; return problems with the secret-bearing inputs."""
    errors: dict[str, list[str]] = {}
    before = credential_hosts.action_destinations(action) if action.pk else None
    stored_type, stored_secrets = action.auth_type, copy.deepcopy(action.auth_secrets or {})
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
            add(errors, "auth", problems)
        else:
            action.auth_type, action.auth_config, action.auth_secrets = auth_module.split_auth(
                auth,
                stored_type=action.auth_type if action.pk else None,
                stored_secrets=action.auth_secrets or {},
            )
    secret = data.get("signing_secret")
    if secret == "generate":
        action.previous_signing_secret, action.signing_secret = "", generate_signing_secret()
        # Not stored twice: the caller's answer shows it this once, so the receiving system can verify.
        action.generated_signing_secret = action.signing_secret
    elif secret:
        problems = _validate_signing_secret(secret)
        if problems:
            add(errors, "signing_secret", problems)
        else:
            action.signing_secret = secret
    if data.get("clear_signing_secret"):
        action.signing_secret = action.previous_signing_secret = ""
    if data.get("client_key"):
        action.client_key = data["client_key"]
    if data.get("clear_client_certificate"):
        action.client_certificate = action.client_key = ""
    if before is not None:
        moved = credential_hosts.moved_credential_problems(
            before=before, action=action, data=data, stored_type=stored_type, stored_secrets=stored_secrets
        )
        merge_problems(errors, moved)
    return errors


def _validate_http_action(action: Action, declared: set[str], errors: dict) -> None:
    secrets = set(SecretValue.objects.filter(organization=action.organization).values_list("name", flat=True))
    allow_http = action.organization.allow_http
    add(errors, "url", rendering.validate_url(action.url, allow_http=allow_http, declared=declared, secrets=secrets))
    add(errors, "query", rendering.validate_pairs(action.query, kind="query", declared=declared, secrets=secrets))
    add(errors, "headers", rendering.validate_pairs(action.headers, kind="header", declared=declared, secrets=secrets))
    if action.body_type not in rendering.BODY_TYPES:
        add(errors, "body_type", _('must be "json" or "form"'))
    body_problems = rendering.validate_body(action.body, declared=declared, body_type=action.body_type, secrets=secrets)
    add(errors, "body", body_problems)
    if action.method == "GET" and action.body is not None:
        add(errors, "body", _("a GET request has no body; use query parameters"))
    if action.email is not None:
        add(errors, "email", _('only an email action has email templates; set kind to "email" or leave email out'))


def _validate_email_action(action: Action, declared: set[str], errors: dict) -> None:
    """An email action has templates instead of a request, and no auth, signing or certificate of its own."""
    for field in ("url", "query", "headers", "body", "client_certificate"):
        if getattr(action, field) not in ("", None, []):
            add(errors, field, _("an email action sends through the organization's SMTP settings: leave it empty"))
    if action.auth_type != Action.AuthType.NONE:
        add(errors, "auth", _("type: an email action uses the organization's SMTP login; choose none"))
    if action.signing_secret:
        add(errors, "signing_secret", _("an email is not signed; remove the signing secret"))
    add(errors, "email", emails.validate_email_templates(action.email, declared=declared))
    if (
        action.status == Action.Status.ACTIVE
        and not EmailSettings.objects.filter(organization=action.organization).exists()
    ):
        add(errors, "status", _("set the organization's email (SMTP) settings before making an email action active"))


def validate_action(action: Action) -> dict[str, list[str]]:
    """Every problem with an action as it would be saved, by field."""
    errors: dict[str, list[str]] = {}
    for field in TEMPLATE_BOUNDS:
        add(errors, field, template_bounds(field, getattr(action, field)))
    if errors:  # the checks below walk the templates: over these bounds, they would not be safe
        return errors
    if not isinstance(action.name, str) or not action.name.strip():
        add(errors, "name", _("an action needs a name"))
    elif len(action.name) > Action._meta.get_field("name").max_length:
        limit = Action._meta.get_field("name").max_length
        add(errors, "name", _("at most %(limit)s characters") % {"limit": limit})
    if action.method not in rendering.METHODS:
        add(errors, "method", _("must be one of %(choices)s") % {"choices": ", ".join(rendering.METHODS)})
    for field in ("name", "description", "url", "method", "status", "client_certificate", "on_rate_limit", "kind",
                  "body_type"):  # fmt: skip
        if not isinstance(getattr(action, field), str):
            add(errors, field, _("must be text"))
            setattr(action, field, "")
    parameter_problems = rendering.validate_parameters(action.parameters)
    add(errors, "parameters", parameter_problems)
    parameters = action.parameters if isinstance(action.parameters, list) else []
    declared = {p["name"] for p in parameters if isinstance(p, dict) and isinstance(p.get("name"), str)}
    if action.kind == Action.Kind.EMAIL:
        _validate_email_action(action, declared, errors)
    elif action.kind == Action.Kind.HTTP:
        _validate_http_action(action, declared, errors)
    else:
        add(errors, "kind", _("must be one of %(choices)s") % {"choices": ", ".join(Action.Kind.values)})
    merge_problems(errors, send_window_problems(action.send_window))
    add(errors, "categories", categories_problems(action.categories))
    if action.response_schema is not None and not isinstance(action.response_schema, dict):
        add(errors, "response_schema", _("must be a JSON Schema object"))
    if (action.rate_limit_calls is None) != (action.rate_limit_period_s is None):
        field = "rate_limit_period_s" if action.rate_limit_period_s is None else "rate_limit_calls"
        add(errors, field, _("give both the number of calls and the period, or neither"))
    for field, problems in _validate_certificate(action.client_certificate, action.client_key).items():
        add(errors, field, problems)
    if action.status == Action.Status.ACTIVE:
        spec = auth_module.AUTH_SPECS.get(action.auth_type)
        for path in spec.secrets if spec else ():
            if auth_module.value_at(action.auth_secrets or {}, path) in (None, ""):
                add(errors, "auth", _("%(path)s: required before the action can be active") % {"path": path})
    try:
        action.full_clean(exclude=["organization", *JSON_CHECKED_FIELDS])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            add(errors, field, messages)
    duplicate = Action.objects.filter(organization=action.organization, name=action.name).exclude(pk=action.pk)
    if duplicate.exists():
        add(errors, "name", _('this organization already has an action named "%(name)s"') % {"name": action.name})
    if not parameter_problems and not errors:
        action.parameters = rendering.normalize_parameters(action.parameters)
    return errors


def _save(action: Action, errors: dict) -> Action:
    errors = {**errors}
    for field, problems in validate_action(action).items():
        add(errors, field, problems)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            action.save()
    except IntegrityError:
        taken = _('this organization already has an action named "%(name)s"') % {"name": action.name}
        raise ValidationError({"name": [taken]}) from None
    return action


@transaction.atomic
def action_create(*, organization: Organization, data: dict[str, Any], user: Any = None) -> Action:
    action = Action(organization=organization, created_by=user if getattr(user, "pk", None) else None)
    return _save(action, _apply(action, data))


def _updated(action: Action, data: dict[str, Any]) -> dict[str, list[str]]:
    """Apply an update's `data` to `action` in memory: its problems, or the 409 of a live journey it would break."""
    before = list(action.parameters)
    errors = _apply(action, data)
    if "parameters" in data:
        _refuse_breaking_live_journeys(action, before)
    return errors


@transaction.atomic
def action_update(*, action: Action, data: dict[str, Any]) -> Action:
    action = Action.objects.select_for_update().get(pk=action.pk)
    window_before = action.send_window
    saved = _save(action, _updated(action, data))
    if saved.send_window != window_before:  # calls held under the old window are weighed again under the new
        held_calls_release(action=saved)
    return saved


def action_update_trial(*, action: Action, data: dict[str, Any]) -> Action:
    """The action as action_update would save it, unsaved; it raises what action_update would (400 and 409 alike)."""
    trial = copy.deepcopy(action)
    errors = merge_problems(_updated(trial, data), validate_action(trial))
    if errors:
        raise ValidationError(errors)
    return trial


def action_check(
    *, organization: Organization, data: dict[str, Any], action: Action | None = None
) -> dict[str, list[str]]:
    """Every problem saving `data` would raise, by field, without saving; the admin form asks this first."""
    trial = copy.deepcopy(action) if action is not None else Action(organization=organization)
    problems = _apply(trial, data)
    if action is not None and "parameters" in data:
        try:
            _refuse_breaking_live_journeys(trial, list(action.parameters))
        except Conflict as conflict:  # what action_update answers with a 409, here on the field it names
            merge_problems(problems, conflict.errors)
    return merge_problems(problems, validate_action(trial))


def _refuse_breaking_live_journeys(action: Action, before: list[dict]) -> None:
    """SPEC section 2: a live journey's mapping must keep working; such an edit is a 409 naming them."""
    if not isinstance(action.parameters, list):
        return  # not a list of parameters at all: validate_action names that problem
    changes = parameter_changes_that_break(before, action.parameters)
    if not changes:
        return
    live = [u for u in action_usage(action=action) if u["status"] in IN_USE]
    if live:
        names = ", ".join(f"{u['name']} (v{u['version']})" for u in live)
        raise Conflict(
            _("This edit %(changes)s, which the live journeys %(names)s rely on.")
            % {"changes": "; ".join(changes), "names": names},
            {"parameters": [_("Used by live journeys: %(names)s.") % {"names": names}]},
        )


def action_delete(*, action: Action) -> None:
    """A journey that is live or paused still calls it (and its runs wait on its calls): a 409."""
    live = [u for u in action_usage(action=action) if u["status"] in IN_USE]
    if live:
        names = ", ".join(f"{u['name']} (v{u['version']})" for u in live)
        raise Conflict(_("The journeys %(names)s use this action: stop them first, or archive it later.")
                       % {"names": names},
                       {"action": [_("Used by journeys: %(names)s.") % {"names": names}]})  # fmt: skip
    action.delete()


def free_action_name(organization: Organization, name: str) -> str:
    """`name`, or `name (2)`, `name (3)`... the first one free, cut to fit the 200 characters of a name."""
    limit = Action._meta.get_field("name").max_length
    candidate, n = name[:limit], 1
    while Action.objects.filter(organization=organization, name=candidate).exists():
        n += 1
        suffix = f" ({n})"
        candidate = name[: limit - len(suffix)] + suffix
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
        raise ValidationError({"format": [_('not a Conduit action export (format "conduit.action.v1")')]})
    unknown = sorted(set(data) - set(EDITABLE_FIELDS) - {"auth", "format"})
    if unknown:
        raise ValidationError({name: [_("unknown field")] for name in unknown})
    fields = {k: v for k, v in data.items() if k in EDITABLE_FIELDS and k != "status"}
    fields["name"] = free_action_name(organization, str(fields.get("name") or _("Imported action")))
    action = Action(organization=organization, status=Action.Status.DRAFT, created_by=user)
    errors = _apply(action, fields)
    auth = data.get("auth") or {"type": "none"}
    problems = auth_module.validate_auth(auth, allow_http=organization.allow_http, stored_type=None, stored_secrets={})
    # A secret's problem starts with its path and a colon ("password: ..."; French puts a space before it).
    problems = [p for p in problems if p.partition(":")[0].strip() not in _secret_paths(auth)]
    if problems:
        add(errors, "auth", problems)
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
    copy_.name = free_action_name(action.organization, _("%(name)s (copy)") % {"name": action.name})
    copy_.status = Action.Status.DRAFT
    copy_.created_by = user if getattr(user, "pk", None) else None
    copy_.save()
    return copy_


def action_test(*, action: Action, values: dict[str, Any]) -> CallResult:
    """One real call with the values given (the test button)."""
    try:
        rendered = render(action, values)
    except rendering.RenderError as exc:
        # Problems with values are the parameters'; an email's missing SMTP settings are the email's.
        errors: dict[str, list[str]] = {}
        for key, message in exc.errors.items():
            is_email = action.kind == Action.Kind.EMAIL and key in ("email", *emails.TEMPLATE_KEYS)
            add(errors, "email" if is_email else "parameters", message)
        raise ValidationError(errors) from None
    # Keyed and signed like a real call, so that a receiver that checks signatures accepts the test too.
    return call_action(action, rendered, idempotency_key=str(uuid.uuid4()))
