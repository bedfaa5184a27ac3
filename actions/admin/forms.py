"""Form pieces the actions admin pages share: JSON and write-only inputs, and a form judged by a service."""

import copy
import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput, JSONString
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.common.json_values import MAX_DEPTH, unstorable
from tenants.admin_scoping import form_organization

CODE_ATTRS = {"class": "vLargeTextField conduit-code", "spellcheck": "false", "autocomplete": "off"}
TEXT_ATTRS = {"class": "vLargeTextField"}
SECRET_KEPT = gettext_lazy("Set. Leave blank to keep it; type a new value to replace it.")
SECRET_MISSING = gettext_lazy("Not set yet.")


class JSONTextField(forms.JSONField):
    """JSON typed into a monospace textarea. A typing mistake is an error on this field, not a 500."""

    def __init__(self, *, empty: Any = None, rows: int = 5, max_depth: int = MAX_DEPTH, **kwargs: Any):
        self.empty, self.max_depth = empty, max_depth
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={**CODE_ATTRS, "rows": rows}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return copy.deepcopy(self.empty)
        if isinstance(value, list | dict | int | float | JSONString):
            return value
        try:
            converted = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                _("This is not valid JSON: %(problem)s (line %(line)s, column %(column)s).")
                % {"problem": exc.msg, "line": exc.lineno, "column": exc.colno},
                code="invalid",
            ) from None
        except RecursionError:
            raise ValidationError(
                _("JSON may be nested at most %(depth)s levels deep.") % {"depth": self.max_depth}, code="invalid"
            ) from None
        if problem := self.unstorable(converted):
            raise ValidationError(problem, code="invalid")
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        """What the page shows again after an error: the text as typed when it cannot be taken (a lone
        surrogate would not even encode into the page)."""
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)
        return InvalidJSONInput(data) if isinstance(data, str) and self.unstorable(value) else value

    def unstorable(self, value: Any) -> str | None:
        """What the API's parser refuses (a template field nests less deep: its bound is the message)."""
        problem = unstorable(value, self.max_depth)
        return problem.removeprefix("the body: ") if problem else None

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        if value is None or value == self.empty:
            return ""  # an empty box reads better than [] and means the same
        return json.dumps(value, indent=2, ensure_ascii=False)


class WriteOnlyTextarea(forms.Textarea):
    """A textarea for a multi-line secret (a PEM key): the stored value never goes into the page."""

    def format_value(self, value: Any) -> None:
        return None


def secret_input() -> forms.PasswordInput:
    """A password box that never puts the stored value back into the page."""
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def write_only_field(label: str) -> forms.CharField:
    """A secret typed as is (no stripping) into a password box, never shown again."""
    return forms.CharField(required=False, strip=False, label=label, widget=secret_input())


def as_text(value: Any) -> str:
    """A parameter's value as a person types it: true/false, text as is, anything else as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def parameter_label(parameter: dict) -> str:
    """A parameter as a person reads it: its name, type, and whether a value is needed."""
    values = {"name": parameter.get("name"), "type": parameter.get("type")}
    if parameter.get("required", True):
        return _("%(name)s (%(type)s, required)") % values
    return _("%(name)s (%(type)s, optional)") % values


class ServiceForm(forms.ModelForm):
    """A form whose rules are the service's: its errors are put on the fields they name."""

    request: HttpRequest

    def organization(self):
        return form_organization(self.request, self)

    def service_data(self) -> dict[str, Any]:
        raise NotImplementedError

    def service_problems(self, organization: Any, data: dict[str, Any]) -> dict[str, list[str]]:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        organization = self.organization()
        if organization is None:
            self.add_error("organization" if "organization" in self.fields else None, _("Choose an organization."))
            return cleaned
        # The service's own checks, run before it saves: what it would refuse is shown on the fields.
        for name, problems in self.service_problems(organization, self.service_data()).items():
            if name not in self.errors:
                for problem in problems:
                    self.add_error(name if name in self.fields else None, problem)
        return cleaned

    def _post_clean(self) -> None:
        pass  # the service validates and saves
