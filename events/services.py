"""Writes to the catalogue. Each function is one transaction."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reservations.services import inventory_create

from .layout_builder import LayoutPlan, parse_layout_spec
from .models import Event, Performance, Seat, SeatLayout, Section


@transaction.atomic
def seat_layout_generate(*, layout: SeatLayout, spec: str) -> LayoutPlan:
    """Replace the layout's sections and seats with those the description generates.

    Raises LayoutSpecError for a faulty description, and ValidationError when a
    performance already sells this layout: its inventory points at these seats.
    """
    plan = parse_layout_spec(spec)
    layout = SeatLayout.objects.select_for_update().get(pk=layout.pk)
    if layout.performances.exists():
        raise ValidationError(
            _("Performances already use this layout, so its seats cannot be regenerated. Create a new layout instead.")
        )
    Seat.objects.filter(layout=layout).delete()
    Section.objects.filter(layout=layout).delete()
    Section.objects.bulk_create(
        [
            Section(
                layout=layout,
                floor=s.floor,
                name=s.name,
                kind=s.kind,
                grade_code=s.grade_code,
                capacity=s.capacity,
                x=s.x,
                y=s.y,
                width=s.width,
                height=s.height,
                position=position,
            )
            for position, s in enumerate(plan.sections)
        ]
    )
    # MariaDB does not return ids from bulk_create, so look the sections up again.
    ids = dict(Section.objects.filter(layout=layout).values_list("position", "id"))
    seats = [
        Seat(
            layout=layout,
            section_id=ids[position],
            row=seat.row,
            number=seat.number,
            label=seat.label,
            grade_code=seat.grade_code,
            is_accessible=seat.is_accessible,
            x=seat.x,
            y=seat.y,
        )
        for position, section in enumerate(plan.sections)
        for seat in section.seats
    ]
    Seat.objects.bulk_create(seats, batch_size=1000)
    layout.spec = spec
    layout.stage_label = plan.stage_label
    layout.width = plan.width
    layout.height = plan.height
    layout.save(update_fields=["spec", "stage_label", "width", "height"])
    return plan


@transaction.atomic
def performance_create(
    *,
    event: Event,
    layout: SeatLayout,
    starts_at: dt.datetime,
    sales_open_at: dt.datetime,
    sales_close_at: dt.datetime,
    status: str = Performance.Status.SCHEDULED,
    waiting_room_rate: int | None = None,
) -> Performance:
    """Create a performance together with its inventory, validated as the admin does."""
    performance = Performance(
        event=event,
        layout=layout,
        starts_at=starts_at,
        sales_open_at=sales_open_at,
        sales_close_at=sales_close_at,
        status=status,
        waiting_room_rate=waiting_room_rate,
    )
    performance.full_clean()
    performance.save()
    inventory_create(performance=performance)
    return performance


@transaction.atomic
def performance_duplicate(*, performance: Performance, starts_at: dt.datetime) -> Performance:
    """Copy a performance to another start time, moving its sales window by the same amount.

    A sales window that would close after the new start is cut to close at the start.
    """
    shift = starts_at - performance.starts_at
    sales_close_at = min(performance.sales_close_at + shift, starts_at)
    return performance_create(
        event=performance.event,
        layout=performance.layout,
        starts_at=starts_at,
        sales_open_at=min(performance.sales_open_at + shift, sales_close_at - dt.timedelta(minutes=1)),
        sales_close_at=sales_close_at,
        status=Performance.Status.SCHEDULED,
        waiting_room_rate=performance.waiting_room_rate,  # the same house, the same rush
    )


def performance_undeletable_reason(performance: Performance, *, has_bookings: bool) -> str:
    """Why `performance` cannot be deleted, or "". One that has had any reservation (even
    a hold let go) is history: it is cancelled, never deleted; one on sale must be closed
    first, so that no hold starts meanwhile."""
    if has_bookings:
        return _(
            "%(performance)s: it has bookings, and a performance with bookings is not deleted. To call it off, "
            "use “Cancel and refund every booking” on the list of performances."
        ) % {"performance": performance}
    if performance.status in (Performance.Status.ON_SALE, Performance.Status.SOLD_OUT):
        return _("%(performance)s is on sale: close its sales first.") % {"performance": performance}
    return ""


@transaction.atomic
def performance_delete(*, performance: Performance) -> None:
    """Delete a performance entered by mistake, with its places, unless
    performance_undeletable_reason says why not (ValidationError)."""
    locked = Performance.objects.select_for_update().get(pk=performance.pk)
    reason = performance_undeletable_reason(locked, has_bookings=locked.reservations.exists())
    if reason:
        raise ValidationError(reason)
    locked.delete()  # its places go with it


# Which statuses each bulk sales action may move a performance from.
_OPENABLE = [Performance.Status.SCHEDULED, Performance.Status.CLOSED]
_CLOSABLE = [Performance.Status.SCHEDULED, Performance.Status.ON_SALE, Performance.Status.SOLD_OUT]


def performances_open_sales(*, performance_ids: list[int], now=None) -> int:
    """Put performances on sale; cancelled, sold-out and started ones are left alone, and
    so are those whose sales window has closed (nobody could buy: change the window first)."""
    now = now or timezone.now()
    return Performance.objects.filter(
        pk__in=performance_ids, status__in=_OPENABLE, starts_at__gt=now, sales_close_at__gt=now
    ).update(status=Performance.Status.ON_SALE)


def performances_close_sales(*, performance_ids: list[int]) -> int:
    return Performance.objects.filter(pk__in=performance_ids, status__in=_CLOSABLE).update(
        status=Performance.Status.CLOSED
    )
