"""The statements compiled once read and write exactly what the ORM would."""

import datetime as dt

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from events.models import Event, Performance
from reservations.models import InventoryItem, Reservation, ReservationLine
from ticketing.compiled import RowFetch, insert

pytestmark = pytest.mark.django_db

BY_ID_AND_SLUG = RowFetch(Performance, "event", where="t.id = %s AND r0.slug = %s")


def concrete_values(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_a_row_and_its_foreign_key_come_back_as_the_orm_builds_them(performance):
    fetched = BY_ID_AND_SLUG.one([performance.pk, performance.event.slug])
    expected = Performance.objects.select_related("event").get(pk=performance.pk)

    assert type(fetched) is Performance and type(fetched.event) is Event
    assert concrete_values(fetched) == concrete_values(expected)
    assert concrete_values(fetched.event) == concrete_values(expected.event)
    assert timezone.is_aware(fetched.starts_at)  # converted like the ORM's, not a raw string or naive value
    assert not fetched._state.adding and fetched._state.db == "default"


def test_no_row_is_none(performance):
    assert BY_ID_AND_SLUG.one([performance.pk, "another-slug"]) is None


def test_an_inserted_row_reads_back_as_an_orm_save_would_have_written_it(alice, performance):
    now = timezone.now()
    expires = now + dt.timedelta(minutes=10)
    fields = {"user": alice, "performance": performance, "expires_at": expires, "created_at": now, "total_amount": 1000}
    ours = Reservation(request_token="ours", **fields)
    theirs = Reservation(request_token="theirs", **fields)

    insert([ours])
    theirs.save(force_insert=True)

    assert ours.pk is not None and not ours._state.adding
    ours_read, theirs_read = Reservation.objects.get(pk=ours.pk), Reservation.objects.get(pk=theirs.pk)
    ignore = {"id", "code", "request_token", "updated_at"}
    assert {k: v for k, v in model_to_dict(ours_read).items() if k not in ignore} == {
        k: v for k, v in model_to_dict(theirs_read).items() if k not in ignore
    }
    assert ours_read.code == ours.code and len(ours.code) > 0
    assert ours_read.updated_at >= now  # auto_now filled in, as save() does


def test_several_rows_go_in_one_statement(alice, performance, django_assert_num_queries):
    reservation = Reservation.objects.create(
        user=alice, performance=performance, expires_at=timezone.now(), request_token="t"
    )
    items = list(InventoryItem.objects.filter(performance=performance, seat__isnull=False)[:3])
    lines = [
        ReservationLine(
            reservation=reservation,
            item=item,
            label=f"seat {i}",
            grade_code="R",
            grade_name="R",
            price=10,
            list_price=10,
        )
        for i, item in enumerate(items)
    ]

    with django_assert_num_queries(1):
        insert(lines)

    assert sorted(reservation.lines.values_list("item_id", flat=True)) == sorted(i.pk for i in items)


def test_nothing_to_insert_runs_no_statement(django_assert_num_queries):
    with django_assert_num_queries(0):
        insert([])
