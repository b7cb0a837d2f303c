"""Writes to the per-performance inventory. Every function here is one transaction."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from events.models import Performance, PriceGrade, Seat, Section

from .models import InventoryItem


def missing_grade_codes(*, performance: Performance) -> list[str]:
    """Grade codes the layout uses that the event has not priced."""
    seat_codes = set(Seat.objects.filter(layout_id=performance.layout_id).values_list("grade_code", flat=True))
    zone_codes = set(
        Section.objects.filter(layout_id=performance.layout_id, kind=Section.Kind.STANDING).values_list(
            "grade_code", flat=True
        )
    )
    priced = set(PriceGrade.objects.filter(event_id=performance.event_id).values_list("code", flat=True))
    return sorted((seat_codes | zone_codes) - priced)


@transaction.atomic
def inventory_create(*, performance: Performance) -> int:
    """Create one inventory row per seat and per standing place; return how many.

    Runs once, when the performance is created: inventory rows are what holds and
    sales lock, so they must exist before the performance can be sold.
    """
    if InventoryItem.objects.filter(performance=performance).exists():
        raise ValidationError(_("This performance already has its inventory."))
    missing = missing_grade_codes(performance=performance)
    if missing:
        raise ValidationError(
            _("The event has no price grade for the layout's grade codes: %(codes)s.") % {"codes": ", ".join(missing)}
        )
    grade_ids = dict(PriceGrade.objects.filter(event_id=performance.event_id).values_list("code", "id"))
    items = [
        InventoryItem(performance=performance, section_id=section_id, seat_id=seat_id, price_grade_id=grade_ids[code])
        for seat_id, section_id, code in Seat.objects.filter(layout_id=performance.layout_id)
        .order_by("id")
        .values_list("id", "section_id", "grade_code")
    ]
    for section_id, code, capacity in Section.objects.filter(
        layout_id=performance.layout_id, kind=Section.Kind.STANDING
    ).values_list("id", "grade_code", "capacity"):
        items.extend(
            InventoryItem(performance=performance, section_id=section_id, price_grade_id=grade_ids[code])
            for _place in range(capacity)
        )
    InventoryItem.objects.bulk_create(items, batch_size=1000)
    return len(items)
