"""Formatting shared by every app: money is KRW in whole won."""

from django.utils.formats import number_format
from django.utils.translation import gettext as _


def krw(amount: int) -> str:
    """12000 -> "12,000원" in Korean, "₩12,000" in English."""
    return _("₩%(amount)s") % {"amount": number_format(amount, decimal_pos=0, force_grouping=True)}
