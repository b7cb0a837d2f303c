"""Phone numbers: typed the way people write them, stored in E.164.

Customers type "010-1234-5678"; we keep "+821012345678" so that one number has
one spelling (lookups, SMS gateways, uniqueness checks later). Numbers without a
country code are read as Korean; foreign numbers need their "+" prefix.
"""

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

DEFAULT_REGION = "KR"
E164_MAX_LENGTH = 16  # "+" and at most 15 digits

# phonenumbers reads letters as keypad digits ("1-800-FLOWERS"); nobody here means
# that, and accepting "010-abcd-efgh" as a number would hide a typo.
_TYPED = re.compile(r"\+?[0-9 ().\-]+")

INVALID_PHONE = _("Enter a valid phone number, such as 010-1234-5678, or +1 650 253 0000 for a number abroad.")


def phone_normalize(value: str, *, region: str = DEFAULT_REGION) -> str:
    """ "010-1234-5678" -> "+821012345678"; "" stays "". ValidationError if it is not a real number."""
    value = (value or "").strip()
    if not value:
        return ""
    if not _TYPED.fullmatch(value):
        raise ValidationError(INVALID_PHONE, code="invalid_phone")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(INVALID_PHONE, code="invalid_phone") from None
    if number.extension or not phonenumbers.is_valid_number(number):
        raise ValidationError(INVALID_PHONE, code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_e164(value: str) -> None:
    """Model-level guard: what is stored is already normalised."""
    if value and (not value.startswith("+") or phone_normalize(value) != value):
        raise ValidationError(INVALID_PHONE, code="invalid_phone")


def phone_display(value: str, *, region: str = DEFAULT_REGION) -> str:
    """How a stored number is shown: "010-1234-5678" at home, "+1 650-253-0000" abroad."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    if phonenumbers.region_code_for_number(number) == region:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
