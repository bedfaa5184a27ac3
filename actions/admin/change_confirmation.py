"""Changes shown before they are made: saving an action that journeys use first shows the field diff and
those journeys; "Save" applies the change, "Back" returns to the form as it was typed.

What was typed travels between the two pages sealed (Fernet, under FIELD_ENCRYPTION_KEYS), never in clear:
it may hold secrets, and the confirmation page must not.
"""

import json
from typing import Any

from cryptography.fernet import InvalidToken
from django.contrib import messages
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from actions.admin.action_fields import AUTH_FIELDS, SECRET_FIELDS
from actions.models import Action
from actions.services.action_changes import action_change_preview
from config.common.exceptions import Conflict
from config.encryption import encrypt_text, fernet

SEALED = "_change_sealed"
CONFIRM = "_change_confirm"
BACK = "_change_back"
SEALED_FOR_S = 3600  # long enough to read the page, short enough that a forgotten tab cannot save much later
SEEN_ATTR = "_conduit_change_seen"  # on the request: the version of the action the person confirmed
WRITE_ONLY_INPUTS = [*SECRET_FIELDS, "signing_secret", "client_key"]
TOKEN_REQUEST_SECRETS = ("headers", "body")  # the token request's parts stored as secrets


class ConfirmFirst(Exception):
    """The change is valid, but journeys use the action: show it before saving."""

    def __init__(self, form: Any, preview: dict[str, Any], *, stale: bool):
        super().__init__("confirm first")
        self.form, self.preview, self.stale = form, preview, stale


def _version(action: Action) -> str:
    return action.updated_at.isoformat()


def _seal(request: HttpRequest, action: Action) -> str:
    posted = {key: values for key, values in request.POST.lists() if key not in ("csrfmiddlewaretoken", SEALED)}
    payload = {"action": action.pk, "user": request.user.pk, "seen": _version(action), "post": posted}
    return encrypt_text(json.dumps(payload))


def _unseal(request: HttpRequest, object_id: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(fernet().decrypt(request.POST[SEALED].encode(), ttl=SEALED_FOR_S))
    except (InvalidToken, ValueError):
        return None
    if str(payload.get("action")) != unquote(object_id) or payload.get("user") != request.user.pk:
        return None  # sealed for another action or another person
    return payload


def _as_posted(request: HttpRequest, posted: dict[str, list[str]]) -> QueryDict:
    data = QueryDict(mutable=True)
    for key, values in posted.items():
        data.setlist(key, values)
    if "csrfmiddlewaretoken" in request.POST:
        data["csrfmiddlewaretoken"] = request.POST["csrfmiddlewaretoken"]
    return data


def _without_secrets(data: QueryDict) -> tuple[QueryDict, bool]:
    """What the form shows again on "Back": every secret typed left out (it would be in the page), and whether
    there was one. Left out, a stored secret is kept; a new one is typed again."""
    data, dropped = data.copy(), False
    for name in WRITE_ONLY_INPUTS:
        if data.get(name):
            data[name], dropped = "", True
    try:
        token_request = json.loads(data.get("token_request") or "null")
    except ValueError:
        token_request = None
    if isinstance(token_request, dict) and any(token_request.get(part) for part in TOKEN_REQUEST_SECRETS):
        kept = {k: v for k, v in token_request.items() if k not in TOKEN_REQUEST_SECRETS}
        data["token_request"], dropped = json.dumps(kept, indent=2, ensure_ascii=False), True
    return data, dropped


def _shown(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def _label(form: Any, name: str) -> str:
    """The form's label of a changed field ("auth.password" is "Password (basic)"), else its name."""
    if name == "signing_secret":  # the form's box says "New signing secret"
        return capfirst(Action._meta.get_field(name).verbose_name)
    field = name
    if name.startswith("auth."):
        key = name.removeprefix("auth.")
        inputs = {k: f for fields in AUTH_FIELDS.values() for k, f in fields.items()}
        field = "auth_type" if key == "type" else inputs.get(key, "")
    found = form.fields.get(field)
    return str(found.label) if found is not None and found.label else name


def _journey_link(journey_id: int) -> str | None:
    try:
        return reverse("admin:journeys_journey_change", args=[journey_id])
    except NoReverseMatch:
        return None


class ChangeConfirmationMixin:
    """For ActionAdmin: its save_model calls `confirm_first`; this view shows the page and takes the answer."""

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id is not None and SEALED in request.POST:
            sealed = _unseal(request, object_id)
            if sealed is None:
                self.message_user(request, _("This confirmation has expired; make the change again."), messages.WARNING)
                return HttpResponseRedirect(request.path)
            going_back = BACK in request.POST
            request.POST = _as_posted(request, sealed["post"])
            if going_back:
                return self._back_to_form(request, object_id, form_url, extra_context)
            setattr(request, SEEN_ATTR, sealed["seen"])
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ConfirmFirst as pending:  # raised before anything was written; its transaction is rolled back
            return self._confirmation_page(request, pending)

    def confirm_first(self, request: HttpRequest, action: Action, form: Any) -> None:
        """Before saving a change: raise ConfirmFirst unless no journey uses the action, nothing changes, or
        the person confirmed this very change of this very version of the action."""
        seen = getattr(request, SEEN_ATTR, None)
        if seen == _version(action):
            return
        try:
            preview = action_change_preview(action=action, data=form.action_data)
        except (ValidationError, Conflict):
            return  # the save refuses it, with the service's words on the fields
        if preview["journeys"] and preview["changes"]:
            raise ConfirmFirst(form, preview, stale=seen is not None)

    def _confirmation_page(self, request: HttpRequest, pending: ConfirmFirst) -> HttpResponse:
        action = pending.form.instance
        changes = [
            {
                "field": name,
                "label": _label(pending.form, name),
                "secret": "changed" in change,
                "old": _shown(change.get("old")),
                "new": _shown(change.get("new")),
            }
            for name, change in pending.preview["changes"].items()
        ]
        journeys = [{**journey, "url": _journey_link(journey["id"])} for journey in pending.preview["journeys"]]
        return TemplateResponse(
            request,
            "admin/actions/action/confirm_change.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "app_label": self.opts.app_label,
                "title": _("Save the changes to “%(name)s”?") % {"name": action.name},
                "original": action,
                "changes": changes,
                "journeys": journeys,
                "stale": pending.stale,
                "sealed": _seal(request, action),
                "sealed_name": SEALED,
                "confirm_name": CONFIRM,
                "back_name": BACK,
                "media": self.media,
            },
        )

    def _back_to_form(self, request: HttpRequest, object_id: str, form_url: str, extra_context: dict | None):
        action = self.get_object(request, unquote(object_id))
        if action is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, action):
            raise PermissionDenied
        data, dropped = _without_secrets(request.POST)
        fields = flatten_fieldsets(self.get_fieldsets(request, action))
        form = self.get_form(request, action, change=True, fields=fields)(data, instance=action)
        form.is_valid()
        if dropped:
            self.message_user(
                request,
                _("The secrets you typed are not shown again: type them again before saving."),
                messages.WARNING,
            )
        return self._refused_page(request, form, object_id, form_url, extra_context)
