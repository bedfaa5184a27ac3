"""A secret shown once (a new API key, a generated Standard Webhooks signing secret): the sentence, the value
as code, and a Copy button (tenants/static/tenants/copy.js); the value is escaped like any text."""

from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _


def shown_once(sentence: str, value: str) -> SafeString:
    return format_html(
        '{} <code class="shown-once">{}</code> <button type="button" class="button" data-copy="{}" '
        'data-copied="{}">{}</button>',
        sentence, value, value, _("Copied"), _("Copy"),
    )  # fmt: skip
