"""An action's categories in the admin: typed as words separated by commas, judged by the service."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy


class CategoriesField(forms.CharField):
    """`marketing-sms, promotions` in the page; ["marketing-sms", "promotions"] for the service."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", gettext_lazy("Categories"))
        kwargs.setdefault(
            "help_text",
            gettext_lazy(
                "Frequency-cap categories of its calls, separated by commas, e.g. marketing-sms, promotions: "
                "the organization's frequency caps count a profile's calls per category. At most 20."
            ),
        )
        kwargs.setdefault("widget", forms.TextInput(attrs={"class": "vLargeTextField", "spellcheck": "false"}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        return [item.strip() for item in text.split(",") if item.strip()]
