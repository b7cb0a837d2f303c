"""Phone numbers: what people type in, E.164 out, a clear error otherwise."""

import pytest
from django.core.exceptions import ValidationError

from accounts.forms import PhoneNumberField
from accounts.phone import INVALID_PHONE, phone_display, phone_normalize, validate_e164


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("010-1234-5678", "+821012345678"),
        ("01012345678", "+821012345678"),
        (" 010 1234 5678 ", "+821012345678"),
        ("(010) 1234.5678", "+821012345678"),
        ("+82 10-1234-5678", "+821012345678"),
        ("02-312-3456", "+8223123456"),  # a Seoul landline
        ("+1 650-253-0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+81 3-1234-5678", "+81312345678"),
        ("", ""),
    ],
)
def test_numbers_are_normalised_to_e164(typed, stored):
    assert phone_normalize(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "123",
        "010-12",
        "abc",
        "010-abcd-efgh",  # keypad letters are a typo here, not a vanity number
        "+82 10-1234-56789",
        "+1 555",
        "010-1234-5678 ext. 12",
        "++821012345678",
        "010-1234-5678-010-1234-5678",
    ],
)
def test_invalid_numbers_get_a_clear_error(typed):
    with pytest.raises(ValidationError) as exc:
        phone_normalize(typed)
    assert exc.value.messages == [str(INVALID_PHONE)]


def test_the_model_validator_accepts_only_the_stored_form():
    validate_e164("")
    validate_e164("+821012345678")
    for value in ("010-1234-5678", "821012345678", "+82 10 1234 5678", "+8210123"):
        with pytest.raises(ValidationError):
            validate_e164(value)


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+821012345678", "010-1234-5678"),
        ("+8223123456", "02-312-3456"),
        ("+16502530000", "+1 650-253-0000"),
        ("", ""),
    ],
)
def test_stored_numbers_are_shown_the_way_people_write_them(stored, shown):
    assert phone_display(stored) == shown


def test_the_form_field_shows_stored_numbers_nationally_and_typed_input_as_typed():
    field = PhoneNumberField()
    assert field.clean("010-1234-5678") == "+821012345678"
    assert field.prepare_value("+821012345678") == "010-1234-5678"
    assert field.prepare_value("010-12") == "010-12"
    assert field.prepare_value("+1 555") == "+1 555"
    assert field.widget.input_type == "tel"
