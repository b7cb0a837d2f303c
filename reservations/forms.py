from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.utils.translation import gettext_lazy as _

from events.models import Performance, PriceGrade
from ticketing.formatting import krw

from .services import Selection

FORM_EXPIRED = {
    "required": _("The form was incomplete. Please reload the page and try again."),
    "max_length": _("The form was incomplete. Please reload the page and try again."),
}


# The largest primary key the database can hold (BigAutoField): a larger "id" is no
# place at all, and the database drivers refuse to send it.
MAX_ID = 2**63 - 1


def parse_id(text) -> int | None:
    """A primary key sent in a form, or None: ASCII digits only (int() also reads "٣"
    and " 12 ", which no form sends), and no more than an id can be (int() refuses
    strings of over 4,300 digits)."""
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


class IdListField(forms.Field):
    """Several values of one name (`items=12&items=13`), each a primary key: a positive
    integer the database can hold, at most `max_count` of them (a form a customer can
    send has a few; a tampered one could send a million)."""

    widget = forms.MultipleHiddenInput
    damaged = _("The seat selection was damaged. Please reload the page.")

    def __init__(self, *, max_count: int = 100, **kwargs):
        super().__init__(**kwargs)
        self.max_count = max_count

    def to_python(self, value):
        if not value:
            return []
        if isinstance(value, str) or len(value) > self.max_count:
            raise ValidationError(self.damaged)
        ids = [parse_id(v) for v in value]
        if None in ids:
            raise ValidationError(self.damaged)
        return ids


def asks_for_places(value) -> bool:
    """Whether a standing zone's posted quantity asks for any place ("" and "0" do not)."""
    return str(value).strip() not in ("", "0")


class HoldForm(forms.Form):
    """Seats picked on the map plus a quantity per standing zone."""

    token = forms.CharField(max_length=64, widget=forms.HiddenInput, error_messages=FORM_EXPIRED)
    items = IdListField(required=False)
    change = forms.CharField(max_length=12, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, performance: Performance, standing_zones=(), **kwargs):
        super().__init__(*args, **kwargs)
        limit = performance.event.ticket_limit
        self.standing_zones = list(standing_zones)
        for zone in self.standing_zones:
            self.fields[f"standing-{zone.pk}"] = forms.IntegerField(
                label=zone.display_name, min_value=0, max_value=limit, required=False, initial=0
            )

    def clean(self):
        # A form drawn by the page names only this performance's zones, and each of
        # its fields but `items` once. Anything else was made by hand: refused, not
        # quietly dropped while the rest is held.
        zones = {f"standing-{zone.pk}" for zone in self.standing_zones}
        sent_twice = getattr(self.data, "getlist", None)  # a QueryDict, as requests have
        for key in self.data:
            if key.startswith("standing-") and key not in zones and asks_for_places(self.data[key]):
                raise ValidationError(IdListField.damaged)
            named = key in self.fields or key.startswith("standing-")
            if sent_twice and key != "items" and named and len(sent_twice(key)) > 1:
                raise ValidationError(IdListField.damaged)
        return super().clean()

    def selection(self) -> Selection:
        standing = tuple(
            (zone.pk, self.cleaned_data[f"standing-{zone.pk}"])
            for zone in self.standing_zones
            if self.cleaned_data.get(f"standing-{zone.pk}")
        )
        return Selection(item_ids=tuple(self.cleaned_data["items"]), standing=standing)


class BestAvailableForm(forms.Form):
    """ "Best available": N adjacent seats in a grade, chosen for the customer."""

    token = forms.CharField(max_length=64, widget=forms.HiddenInput, error_messages=FORM_EXPIRED)
    grade = forms.ModelChoiceField(label=_("Grade"), queryset=PriceGrade.objects.none(), empty_label=None)
    quantity = forms.IntegerField(label=_("Seats"), min_value=1, initial=2)

    def __init__(self, *args, performance: Performance, grades: list[PriceGrade] | None = None, **kwargs):
        """`grades`: the grades to offer, already loaded (the seat map page has them);
        by default every grade of the event."""
        super().__init__(*args, **kwargs)
        field = self.fields["grade"]
        field.queryset = PriceGrade.objects.filter(event=performance.event_id)
        if grades is not None:
            field.queryset = field.queryset.filter(pk__in=[grade.pk for grade in grades])
            # Listed from the grades in hand: a select reads a queryset's choices afresh
            # each time it looks at them (twice per render), one query each.
            field.choices = [(grade.pk, field.label_from_instance(grade)) for grade in grades]
        limit = performance.event.ticket_limit
        self.fields["quantity"].validators.append(
            MaxValueValidator(limit, _("You can choose at most %(limit_value)s seats."))
        )
        self.fields["quantity"].widget.attrs.update({"min": 1, "max": limit})


class DiscountForm(forms.Form):
    """One choice per ticket of a hold: its full price, or a discount it may be sold at.

    `options` is services.discount_options: the discounts each line may have, with the
    price each gives. A value not among a line's choices (a tampered form, a discount
    withdrawn since the page was drawn) is a field error; the service checks the rest
    (how many of a discount one booking may have) under the hold's lock.
    """

    def __init__(self, *args, lines, options: dict[int, list], **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = lines
        # Every discount some ticket may have, once each, for the rules shown beside.
        self.offered = list(
            {discount.pk: discount for found in options.values() for discount, _price in found}.values()
        )
        for line in lines:
            full = _("Full price · %(price)s") % {"price": krw(line.list_price)}
            choices = [("", full)] + [
                (str(discount.pk), f"{discount.name} ({discount.label}) · {krw(price)}")
                for discount, price in options[line.pk]
            ]
            self.fields[self.field_name(line)] = forms.ChoiceField(
                label=line.label, choices=choices, required=False, initial=str(line.discount_id or "")
            )

    @staticmethod
    def field_name(line) -> str:
        return f"discount-{line.pk}"

    def rows(self):
        """(line, bound field) for the template, in the hold's order."""
        return [(line, self[self.field_name(line)]) for line in self.lines]

    def choices(self) -> dict[int, int | None]:
        """What services.reservation_choose_discounts takes, once the form is valid."""
        return {line.pk: parse_id(self.cleaned_data[self.field_name(line)]) for line in self.lines}
