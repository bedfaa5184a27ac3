"""The organization's settings form in the admin (platform staff): its default time zone must be a real IANA name."""

from django import forms
from django.utils.translation import gettext as _

from config.common.time_zones import is_time_zone
from tenants.models import Organization


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = "__all__"  # noqa: DJ007  (platform staff edit every setting; one added later shows at once)

    def clean_default_time_zone(self) -> str:
        name = self.cleaned_data["default_time_zone"].strip()
        if not is_time_zone(name):
            raise forms.ValidationError(_("Not a time zone: give an IANA name such as Europe/Paris or UTC."))
        return name
