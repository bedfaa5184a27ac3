"""Segments in the admin: the expression checked by the same service as the API's, and on the change page
how many profiles match now and a sample of them."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _

from config.common.exceptions import Conflict
from journeys.audience import segments as services
from journeys.models import Segment
from tenants.admin_scoping import OrgScopedAdminMixin, adopt_saved_row, checked_by_service, form_organization
from tenants.audit.admin import AuditHistoryAdminMixin
from tenants.roles import Capability

SHOWN_ATTRIBUTES = 4  # a few attributes of each sampled profile: enough to see why it matched


class SegmentForm(forms.ModelForm):
    """Checked by `segments.segment_validate`, the same function as the API's."""

    class Meta:
        model = Segment
        fields = ["organization", *services.SEGMENT_FIELDS]
        widgets = {
            "expression": forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField", "spellcheck": "false"}),
            "description": forms.Textarea(attrs={"rows": 2}),
        }

    request: HttpRequest

    def clean(self) -> dict:
        data = super().clean()
        organization = form_organization(getattr(self, "request", None), self)
        checked_by_service(self, organization, services.SEGMENT_FIELDS, services.segment_validate)
        return data


def shown_attributes(attributes: Any) -> str:
    """The first few attributes of a profile, as `key: value`, for the sample."""
    if not isinstance(attributes, dict):
        return ""
    items = list(attributes.items())
    said = ", ".join(f"{key}: {str(value)[:60]}" for key, value in items[:SHOWN_ATTRIBUTES])
    return said + (", …" if len(items) > SHOWN_ATTRIBUTES else "")


@admin.register(Segment)
class SegmentAdmin(AuditHistoryAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    """Everyone sees segments; admins, technical users and marketers edit them."""

    view_capability = Capability.VIEW_JOURNEYS
    change_capability = Capability.EDIT_JOURNEYS
    form = SegmentForm
    list_display = ["name", "expression", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]
    change_form_template = "admin/journeys/segment/change_form.html"

    def get_fields(self, request: HttpRequest, obj: Segment | None = None) -> list[str]:
        fields = [*(["organization"] if request.user.is_superuser else []), *services.SEGMENT_FIELDS]
        return fields + (["created_at", "updated_at"] if obj is not None else [])

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        segment = self.get_object(request, unquote(object_id))
        if segment is None:  # missing or another organization's: not found, as the API answers
            raise Http404(_("Segment not found."))
        if request.method == "GET":
            extra_context = {**self._audience(request, segment), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    def _audience(self, request: HttpRequest, segment: Segment) -> dict[str, Any]:
        """The count and the sample the change page shows; nothing when the budget ran out."""
        try:
            count = services.segment_count(segment=segment)
            sample = services.segment_sample(segment=segment)
        except services.SegmentCountError as exc:
            self.message_user(request, _("Counting stopped: %(why)s") % {"why": exc}, messages.WARNING)
            return {}
        except ValidationError:  # saved before the rules of today: the form says why
            return {}
        rows = [{"external_id": p["external_id"], "attributes": shown_attributes(p["attributes"])} for p in sample]
        return {"segment_count": count, "segment_sample": rows}

    def save_model(self, request: HttpRequest, obj: Segment, form: SegmentForm, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in services.SEGMENT_FIELDS}
        if change:
            saved = services.segment_update(segment=obj, data=data)
        else:
            saved = services.segment_create(organization=form_organization(request, form), data=data)
        adopt_saved_row(obj, saved)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        try:
            with transaction.atomic():
                return super().delete_view(request, object_id, extra_context)
        except Conflict as refused:  # a journey enters it: said on its page, nothing deleted
            self.message_user(request, refused.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:journeys_segment_change", args=[object_id]))

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        services.segment_delete(segment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for segment in queryset:
            try:
                services.segment_delete(segment=segment)
            except Conflict as refused:
                self.message_user(request, refused.message, messages.ERROR)
