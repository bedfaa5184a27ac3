"""The forms of the action's extra pages: a test request's values, a sample to infer from, an import, a template."""

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.admin.forms import CODE_ATTRS, JSONTextField, WriteOnlyTextarea, as_text, parameter_label, secret_input
from actions.models import Action
from actions.services import templates as catalogue
from config.common.json_values import unstorable
from tenants.admin_scoping import messages_by_field
from tenants.models import Organization

PLACEHOLDER_OF_TYPE = {
    "integer": gettext_lazy("e.g. 42"),
    "decimal": gettext_lazy("e.g. 12.50"),
    "boolean": gettext_lazy("true or false"),
    "datetime": gettext_lazy("e.g. 2026-11-29T10:00:00Z"),
    "date": gettext_lazy("e.g. 2026-11-29"),
    "list": gettext_lazy('e.g. ["a", "b"]'),
    "object": gettext_lazy('e.g. {"key": "value"}'),
}


class ParameterValuesForm(forms.Form):
    """One input per parameter of the action, prefilled with its default."""

    def __init__(self, action: Action, *args: Any, **kwargs: Any):
        super().__init__(*args, prefix="parameter", **kwargs)
        self.action = action
        for parameter in action.parameters or []:
            kind, default = parameter.get("type"), parameter.get("default")
            label = parameter_label(parameter)
            attrs = {"placeholder": PLACEHOLDER_OF_TYPE[kind]} if kind in PLACEHOLDER_OF_TYPE else {}
            if kind in ("list", "object"):
                field = JSONTextField(
                    empty=None,
                    label=label,
                    initial=default,
                    widget=forms.Textarea(attrs={**CODE_ATTRS, **attrs, "rows": 3}),
                )
            else:
                field = forms.CharField(
                    required=False,
                    label=label,
                    initial=None if default is None else as_text(default),
                    widget=forms.TextInput(attrs={**attrs, "class": "vTextField"}),
                )
            field.help_text = parameter.get("description") or ""
            self.fields[parameter["name"]] = field

    def values(self) -> dict[str, Any]:
        return {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}

    def attach(self, exc: ValidationError) -> None:
        for message in [m for messages_ in messages_by_field(exc).values() for m in messages_]:
            found = re.match(r"^parameter (\w+):", message)
            name = found.group(1) if found else None
            self.add_error(name if name in self.fields else None, message)


def _organization_choice(*, required: bool = True) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        required=required,
        queryset=Organization.objects.filter(is_active=True),
        label=_("Organization"),
        help_text=_("Platform staff: the organization the new action belongs to."),
    )


class InferForm(forms.Form):
    sample = JSONTextField(
        empty=None,
        rows=10,
        label=gettext_lazy("Sample request body"),
        help_text=gettext_lazy('A JSON body the service accepts, e.g. {"to": "+33600000000", "text": "Hello"}.'),
    )
    sample_response = JSONTextField(
        empty=None,
        rows=6,
        label=gettext_lazy("Sample response (optional)"),
        help_text=gettext_lazy("A successful answer of the service; Conduit infers the response schema from it."),
    )
    name = forms.CharField(
        required=False,
        max_length=200,
        label=gettext_lazy("Name"),
        help_text=gettext_lazy("The new action's name, e.g. Send SMS."),
    )
    url = forms.CharField(
        required=False,
        max_length=2000,
        label=gettext_lazy("URL"),
        help_text=gettext_lazy("Where the body is sent, starting with https://."),
        widget=forms.TextInput(attrs={"class": "vLargeTextField conduit-code"}),
    )
    method = forms.ChoiceField(
        required=False, label=gettext_lazy("Method"), choices=Action.Method.choices, initial=Action.Method.POST
    )

    def __init__(self, *args: Any, with_organization: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if with_organization:  # asked only at the last step
            self.fields["organization"] = _organization_choice(required=False)


class ImportForm(forms.Form):
    data = JSONTextField(
        empty=None,
        rows=14,
        label=gettext_lazy("Exported JSON"),
        help_text=gettext_lazy('Paste what "Export JSON" gave (format "conduit.action.v1"), or choose the file below.'),
    )
    file = forms.FileField(required=False, label=gettext_lazy("Or an export file"))

    def __init__(self, *args: Any, with_organization: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if with_organization:
            self.fields["organization"] = _organization_choice()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None:
            try:
                cleaned["data"] = json.loads(upload.read().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                self.add_error("file", _("This file is not a JSON export."))
            else:
                if problem := unstorable(cleaned["data"]):
                    self.add_error("file", problem)
        elif cleaned.get("data") is None and "data" not in self.errors:
            self.add_error("data", _("Paste an export or choose a file."))
        return cleaned


class FromTemplateForm(forms.Form):
    """A template's credentials, and the new action's name and status."""

    name = forms.CharField(
        max_length=200, label=gettext_lazy("Name"), help_text=gettext_lazy("What marketers see in the palette.")
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        choices=[
            (Action.Status.DRAFT, gettext_lazy("Draft: test it first")),
            (Action.Status.ACTIVE, gettext_lazy("Active: in the palette now")),
        ],
        initial=Action.Status.DRAFT,
    )

    def __init__(self, template: catalogue.Template, *args: Any, with_organization: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.template = template
        self.fields["name"].initial = template.name
        if with_organization:
            self.fields["organization"] = _organization_choice()
        for credential in template.credentials:
            if credential.secret:
                widget = (
                    WriteOnlyTextarea(attrs={**CODE_ATTRS, "rows": 6}) if credential.multiline
                    else secret_input()
                )  # fmt: skip
            else:
                widget = forms.TextInput(attrs={"class": "vLargeTextField"})
            help_text = str(credential.help)
            if credential.secret:
                help_text += " " + _("Stored encrypted, never shown again.")
            self.fields[f"credential_{credential.name}"] = forms.CharField(
                label=credential.label, required=credential.required, strip=not credential.secret,
                widget=widget, help_text=help_text.strip(),
            )  # fmt: skip

    def credentials(self) -> dict[str, str]:
        return {
            c.name: self.cleaned_data.get(f"credential_{c.name}") or ""
            for c in self.template.credentials
            if self.cleaned_data.get(f"credential_{c.name}")
        }

    def attach(self, exc: ValidationError) -> None:
        for key, problems in messages_by_field(exc).items():
            field = f"credential_{key.removeprefix('credentials.')}" if key.startswith("credentials.") else key
            for problem in problems:
                if field in self.fields:
                    self.add_error(field, problem)
                else:
                    self.add_error(None, problem if key == forms.forms.NON_FIELD_ERRORS else f"{key}: {problem}")
