"""The one shape of a name people give: a parameter, a secret value, a step key (letters, digits, _)."""

import re

from django.utils.translation import gettext_lazy

IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]{0,63}"  # at most 64 characters, not starting with a digit
NAME = re.compile(rf"^{IDENTIFIER}$")
NAME_HELP = gettext_lazy("letters, digits and _ (not starting with a digit), at most 64")

# A category of calls that frequency caps count (`marketing-sms`): lowercase words joined by - or _.
CATEGORY = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
CATEGORY_MAX_LENGTH = 64
CATEGORY_HELP = gettext_lazy("lowercase letters and digits, words joined by - or _ (e.g. marketing-sms), at most 64")
