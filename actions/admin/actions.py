"""The admin door to actions: the same services as the API, never a second copy of the rules.

Technical users configure, test, duplicate, export and import actions (ActionAdmin, its pages in
action_pages); everyone else sees the palette (palette.py), never a URL, header or secret.
"""

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR, TO_FIELD_VAR
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from actions.admin.action_fields import AUTH_FORM_FIELDS, EMAIL_FIELDS
from actions.admin.action_form import ActionForm
from actions.admin.action_pages import ActionPagesMixin
from actions.admin.change_confirmation import ChangeConfirmationMixin
from actions.admin.palette import ActionDisplay
from actions.admin.send_window_fields import SEND_WINDOW_FIELDS
from actions.models import Action
from actions.selectors import action_host
from actions.services import actions as services
from config.common.exceptions import Conflict
from tenants.admin_scoping import OrgScopedAdminMixin, adopt_saved_row, messages_by_field
from tenants.audit.admin import AuditHistoryAdminMixin
from tenants.roles import Capability

SIGNING_FIELDS = [
    "signing_secret_status",
    "signing_secret",
    "generate_signing_secret",
    "clear_signing_secret",
]
DELIVERY_FIELDS = ["timeout_ms", "max_retries", "rate_limit_calls", "rate_limit_period_s", "on_rate_limit"]


class SaveRefused(Exception):
    """The service refused at save time what the form's check let through (a race): `form` carries its words."""

    def __init__(self, form: ActionForm):
        super().__init__(form.errors)
        self.form = form


@admin.register(Action)
class ActionAdmin(
    AuditHistoryAdminMixin,
    ActionDisplay,
    ActionPagesMixin,
    ChangeConfirmationMixin,
    OrgScopedAdminMixin,
    admin.ModelAdmin,
):
    """The whole configuration, for admins and technical users."""

    view_capability = Capability.MANAGE_ACTIONS
    change_capability = Capability.MANAGE_ACTIONS
    form = ActionForm
    list_display = ["name", "status", "kind", "method", "host", "auth_type", "updated_at"]
    list_filter = ["status", "kind", "auth_type"]
    search_fields = ["name", "description"]

    class Media:
        css = {"all": ["actions/admin.css"]}
        js = ["actions/auth_fields.js"]

    @admin.display(description=gettext_lazy("host"), ordering="url")
    def host(self, obj: Action) -> str:
        return action_host(action=obj)

    @admin.display(description=gettext_lazy("signing secret set"))
    def signing_secret_status(self, obj: Action) -> str:
        if not obj.signing_secret:
            return _("no")
        return _("yes, and the previous one still signs too") if obj.previous_signing_secret else _("yes")

    def get_readonly_fields(self, request: HttpRequest, obj: Action | None = None) -> list[str]:
        readonly = ["signing_secret_status", "used_in"]
        return readonly + (["organization"] if obj is not None and request.user.is_superuser else [])

    def get_fieldsets(self, request: HttpRequest, obj: Action | None = None) -> list:
        first = ["name", "description", "status", "kind"]
        if request.user.is_superuser:
            first = ["organization", *first]
        fieldsets = [
            (_("Action"), {"fields": first}),
            (
                _("Request"),
                {
                    "fields": ["method", "url", "query", "headers", "body_type", "body"],
                    "classes": ["conduit-kind-http"],
                    "description": _(
                        "For an HTTP action. Placeholders such as {{phone}} are filled from the "
                        "parameters at each call; {{secrets.NAME}} puts in one of the organization's secret values "
                        "when the call is sent, never shown."
                    ),
                },
            ),
            (
                _("Email"),
                {
                    "fields": list(EMAIL_FIELDS.values()),
                    "classes": ["conduit-kind-email"],
                    "description": _(
                        "For an email action, sent through the organization's email settings. "
                        "Placeholders such as {{first_name}} are filled from the parameters."
                    ),
                },
            ),
            (_("Parameters"), {"fields": ["parameters"]}),
            (
                _("Authentication"),
                {
                    "fields": ["auth_type", *AUTH_FORM_FIELDS],
                    "classes": ["conduit-auth", "conduit-kind-http"],
                    "description": _("Secrets are stored encrypted and never shown again."),
                },
            ),
            (
                _("Signing"),
                {
                    "fields": SIGNING_FIELDS,
                    "classes": ["conduit-kind-http"],
                    "description": _(
                        "With a signing secret, each call carries Standard Webhooks "
                        "signature headers the service can check. The secret itself is never shown here."
                    ),
                },
            ),
            (_("Response"), {"fields": ["response_schema"]}),
            (_("Delivery"), {"fields": DELIVERY_FIELDS}),
            (_("Frequency caps"), {"fields": ["categories"]}),
            (
                _("Send window"),
                {
                    "fields": SEND_WINDOW_FIELDS,
                    "description": _(
                        "Quiet hours: calls are made only on these days and hours, in the profile's time zone "
                        "(else the organization's). A call due outside waits for the next opening; a journey "
                        "step may set its own."
                    ),
                },
            ),
            (
                _("Mutual TLS"),
                {
                    "fields": ["client_certificate", "client_key", "clear_client_certificate"],
                    "classes": ["collapse", "conduit-kind-http"],
                    "description": _("Only for services that ask for a client certificate."),
                },
            ),
        ]
        if obj is not None:
            fieldsets.append((_("Used in"), {"fields": ["used_in"]}))
        return fieldsets

    # --- saving: the service decides; the form has already asked it with action_check
    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except SaveRefused as refused:  # its transaction is rolled back
            return self._refused_page(request, refused.form, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Action, form: ActionForm, change: bool) -> None:
        if change:
            self.confirm_first(request, obj, form)  # journeys use it: the diff and those journeys first
        try:
            if change:
                saved = services.action_update(action=obj, data=form.action_data)
            else:
                saved = services.action_create(organization=form.organization, data=form.action_data, user=request.user)
        except ValidationError as exc:
            form.attach_problems(messages_by_field(exc))
            raise SaveRefused(form) from exc
        except Conflict as exc:
            problems = {k: v if isinstance(v, list) else [str(v)] for k, v in exc.errors.items()}
            form.attach_problems(problems or {NON_FIELD_ERRORS: [exc.message]})
            raise SaveRefused(form) from exc
        adopt_saved_row(obj, saved)
        self.show_generated_secret(request, saved)

    def _refused_page(
        self, request: HttpRequest, form: ActionForm, object_id: str | None, form_url: str, extra_context: dict | None
    ) -> HttpResponse:
        """The form as it was posted, with the service's words on its fields, as Django shows an invalid form."""
        add = object_id is None
        obj = None if add else form.instance
        admin_form = helpers.AdminForm(
            form,
            list(self.get_fieldsets(request, obj)),
            self.get_prepopulated_fields(request, obj),
            self.get_readonly_fields(request, obj),
            model_admin=self,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": (_("Add %s") if add else _("Change %s")) % self.opts.verbose_name,
            "subtitle": str(obj) if obj else None,
            "adminform": admin_form,
            "object_id": object_id,
            "original": obj,
            "is_popup": IS_POPUP_VAR in request.POST or IS_POPUP_VAR in request.GET,
            "to_field": request.POST.get(TO_FIELD_VAR, request.GET.get(TO_FIELD_VAR)),
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=add, change=not add, obj=obj, form_url=form_url)

    def delete_model(self, request: HttpRequest, obj: Action) -> None:
        services.action_delete(action=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for action in queryset:
            services.action_delete(action=action)
