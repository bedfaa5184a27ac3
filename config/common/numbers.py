"""Numbers in the reader's language: 65,536 and 66.7 in English, 65 536 and 66,7 in French."""

from django.utils.formats import number_format
from django.utils.translation import get_language


def grouped(number: int) -> str:
    """With thousands separators; as in English where no language is active (a command)."""
    return number_format(number, force_grouping=True) if get_language() else f"{number:,}"


def decimal(number: float, places: int = 1) -> str:
    # number_format cuts the digits off; rounding first gives what f"{n:.1f}" gives.
    return number_format(round(number, places), places) if get_language() else f"{number:.{places}f}"
