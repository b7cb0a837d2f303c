import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from events.models import Performance, PriceGrade, Seat
from events.services import performance_create, performance_duplicate, performances_open_sales
from events.tests.factories import EventFactory, LayoutFactory, VenueFactory
from reservations.models import InventoryItem

pytestmark = pytest.mark.django_db


def test_two_seats_cannot_be_drawn_at_the_same_place(hall):
    seat = Seat.objects.filter(layout=hall).first()
    clash = Seat(layout=hall, section=seat.section, row="Z", number=99, label="x", grade_code="R", x=seat.x, y=seat.y)
    with pytest.raises(ValidationError, match="already drawn at that position"):
        clash.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        clash.save()


def test_a_seat_number_is_unique_within_its_section(hall):
    seat = Seat.objects.filter(layout=hall).first()
    twin = Seat(
        layout=hall, section=seat.section, row=seat.row, number=seat.number, label="x", grade_code="R", x=999, y=999
    )
    with pytest.raises(ValidationError, match="already has a seat with that row and number"):
        twin.full_clean()


def test_prices_cannot_be_negative():
    grade = PriceGrade(event=EventFactory(), code="Z", price=-1000, colour="#000000")
    with pytest.raises(ValidationError):
        grade.full_clean()
    # SQLite enforces the check constraint; MariaDB's unsigned column refuses first.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        grade.save()


def _times(**shift):
    start = timezone.now() + dt.timedelta(days=5)
    times = {
        "starts_at": start,
        "sales_open_at": timezone.now() - dt.timedelta(days=1),
        "sales_close_at": start - dt.timedelta(hours=1),
    }
    times.update({k: start + v for k, v in shift.items()})
    return times


@pytest.mark.parametrize(
    ("shift", "message"),
    [
        ({"sales_open_at": dt.timedelta(hours=-1), "sales_close_at": dt.timedelta(hours=-2)}, "Sales must close after"),
        ({"sales_close_at": dt.timedelta(hours=1)}, "no later than the performance starts"),
    ],
)
def test_sales_windows_must_make_sense(hall, shift, message):
    event = EventFactory(venue=hall.venue, grades=[("R", 1), ("S", 1), ("ST", 1)])
    with pytest.raises(ValidationError, match=message):
        performance_create(event=event, layout=hall, **_times(**shift))
    assert not Performance.objects.exists()


def test_a_performance_must_use_a_layout_of_the_events_venue(hall):
    event = EventFactory(venue=VenueFactory(name="Other Hall"), grades=[("R", 1), ("S", 1), ("ST", 1)])
    with pytest.raises(ValidationError, match="not to the event's venue Other Hall"):
        performance_create(event=event, layout=hall, **_times())
    assert not Performance.objects.exists()


def test_every_grade_code_of_the_layout_needs_a_price(hall):
    event = EventFactory(venue=hall.venue, grades=[("R", 1)])
    with pytest.raises(ValidationError, match="S, ST"):
        performance_create(event=event, layout=hall, **_times())
    assert not Performance.objects.exists()
    assert not InventoryItem.objects.exists()


def test_duplicate_moves_the_sales_window_and_builds_inventory(performance):
    new_start = performance.starts_at + dt.timedelta(days=7)
    copy = performance_duplicate(performance=performance, starts_at=new_start)
    assert copy.pk != performance.pk
    assert copy.sales_close_at - performance.sales_close_at == dt.timedelta(days=7)
    assert copy.status == Performance.Status.SCHEDULED
    assert copy.inventory.count() == performance.inventory.count()


def test_open_sales_leaves_cancelled_performances_alone(performance):
    other = performance_duplicate(performance=performance, starts_at=performance.starts_at + dt.timedelta(days=1))
    Performance.objects.filter(pk=performance.pk).update(status=Performance.Status.CANCELLED)
    assert performances_open_sales(performance_ids=[performance.pk, other.pk]) == 1
    performance.refresh_from_db()
    other.refresh_from_db()
    assert performance.status == Performance.Status.CANCELLED
    assert other.status == Performance.Status.ON_SALE


@pytest.mark.parametrize(
    ("status", "open_delta", "close_delta", "start_delta", "expected"),
    [
        ("on_sale", -1, 1, 2, "on_sale"),
        ("on_sale", 1, 2, 3, "upcoming"),
        ("scheduled", -1, 1, 2, "upcoming"),
        ("on_sale", -3, -1, 2, "closed"),
        ("closed", -1, 1, 2, "closed"),
        ("sold_out", -1, 1, 2, "sold_out"),
        ("cancelled", -1, 1, 2, "cancelled"),
        ("on_sale", -3, -2, -1, "past"),
    ],
)
def test_sales_state(status, open_delta, close_delta, start_delta, expected):
    now = timezone.now()
    day = dt.timedelta(days=1)
    performance = Performance(
        status=status,
        sales_open_at=now + open_delta * day,
        sales_close_at=now + close_delta * day,
        starts_at=now + start_delta * day,
    )
    assert performance.sales_state(now) == expected


def test_layout_factory_default_is_usable():
    assert LayoutFactory().seats.count() == 30


def test_grade_codes_differing_only_in_case_are_refused_by_the_database(db):
    from django.db import IntegrityError, transaction

    from events.models import PriceGrade
    from events.tests.factories import EventFactory

    event = EventFactory(grades=[("R", 100000)])
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceGrade.objects.create(event=event, code="r", price=1000)
    assert list(event.grades.values_list("code", flat=True)) == ["R"]
