"""The action palette: what every role may see of the active actions (name, description, parameters, used in)."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.admin.forms import as_text, parameter_label
from actions.models import Action, PaletteAction
from actions.selectors import action_usage
from tenants.admin_scoping import OrgScopedAdminMixin, ReadOnlyAdminMixin
from tenants.roles import Capability

NOT_USED = gettext_lazy("Not used by any journey yet.")


def _used_in_html(action: Action | None) -> str:
    usage = action_usage(action=action) if action is not None and action.pk else []
    if not usage:
        return NOT_USED
    return format_html(
        "<ul class='conduit-used-in'>{}</ul>",
        format_html_join(
            "",
            "<li>{}{}</li>",
            (
                (item.get("name", item), f" ({item['status']})" if item.get("status") else "")
                if isinstance(item, dict)
                else (item, "")
                for item in usage
            ),
        ),
    )


def _parameter_summary(parameters: list[dict]) -> str:
    return ", ".join(parameter_label(p) for p in parameters or [])


class ActionDisplay:
    """The "used in" column and field, shared by the palette and the action configuration."""

    @admin.display(description=gettext_lazy("used in"))
    def used_in(self, obj: Action) -> str:
        return _used_in_html(obj)


@admin.register(PaletteAction)
class PaletteActionAdmin(ActionDisplay, ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """The action palette: what every role may see of the active actions, read-only."""

    view_capability = Capability.VIEW_PALETTE
    change_capability = Capability.MANAGE_ACTIONS
    list_display = ["name", "short_description", "parameter_summary", "used_in"]
    search_fields = ["name", "description"]
    # Listed explicitly so that nothing else (URL, headers, auth, secrets) is ever rendered.
    fields = ["name", "what_it_does", "parameter_table", "used_in"]
    readonly_fields = fields
    actions = None

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status=Action.Status.ACTIVE)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return super().changelist_view(request, {"title": _("Action palette"), **(extra_context or {})})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra = {"title": _("Action in the palette"), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    @admin.display(description=gettext_lazy("description"))
    def what_it_does(self, obj: Action) -> str:
        return obj.description or _("No description yet.")

    @admin.display(description=gettext_lazy("description"))
    def short_description(self, obj: Action) -> str:
        return Truncator(obj.description).chars(120)

    @admin.display(description=gettext_lazy("parameters"))
    def parameter_summary(self, obj: Action) -> str:
        return _parameter_summary(obj.parameters)

    @admin.display(description=gettext_lazy("parameters"))
    def parameter_table(self, obj: Action) -> str:
        if not obj.parameters:
            return _("No parameters.")
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    p.get("name"),
                    p.get("type"),
                    _("yes") if p.get("required", True) else _("no"),
                    "" if p.get("default") is None else as_text(p["default"]),
                    p.get("description", ""),
                )
                for p in obj.parameters
            ),
        )
        return format_html(
            "<table class='conduit-parameters'><thead><tr><th>{}</th><th>{}</th><th>{}</th>"
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("Name"),
            _("Type"),
            _("Required"),
            _("Default"),
            _("Description"),
            rows,
        )
