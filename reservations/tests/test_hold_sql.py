"""The hold path's hand-written SQL says the same as the ORM definitions it stands for."""

import datetime as dt

import pytest
from django.utils import timezone

from reservations import hold_sql
from reservations.models import InventoryItem, Reservation, free_condition
from reservations.tests.factories import hold, hold_items, seat_items

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def seats(performance, count):
    return list(InventoryItem.objects.filter(performance=performance, seat__isnull=False).order_by("pk")[:count])


def test_free_sql_agrees_with_free_condition_on_every_kind_of_row(alice, performance):
    rows = seats(performance, 7)
    states = [
        ("available", None),
        ("held", NOW + dt.timedelta(minutes=5)),  # held
        ("held", NOW - dt.timedelta(seconds=1)),  # expired a second ago
        ("held", NOW),  # expires this very instant: free
        ("held", NOW + dt.timedelta(microseconds=1)),  # a microsecond to go
        ("sold", None),
        ("blocked", None),
    ]
    for item, (status, until) in zip(rows, states, strict=True):
        InventoryItem.objects.filter(pk=item.pk).update(status=status, held_until=until)
    ids = [item.pk for item in rows]

    rows = hold_sql.seat_rows(performance_id=performance.pk, item_ids=ids, now=NOW, user_id=alice.pk, request_token="t")
    by_sql = {row[0]: bool(row[8]) for row in rows}
    by_orm = set(InventoryItem.objects.filter(pk__in=ids).filter(free_condition(NOW)).values_list("pk", flat=True))

    assert by_sql == {pk: pk in by_orm for pk in ids}
    assert [by_sql[pk] for pk in ids] == [True, False, True, True, False, False, False]


def test_seat_rows_ignore_places_of_other_performances_and_standing(performance, hall):
    from events.tests.factories import PerformanceFactory

    other = PerformanceFactory(event=performance.event, layout=hall)
    mine = seats(performance, 1)[0]
    theirs = seats(other, 1)[0]
    standing = InventoryItem.objects.filter(performance=performance, seat__isnull=True).first()

    rows = hold_sql.seat_rows(
        performance_id=performance.pk, item_ids=[mine.pk, theirs.pk, standing.pk], now=NOW, user_id=0, request_token=""
    )

    assert [row[0] for row in rows] == [mine.pk]
    assert rows[0][1] == mine.seat.label
    assert (rows[0][4], rows[0][6]) == (mine.price_grade.code, mine.price_grade.price)


def test_seat_rows_name_the_reservation_this_customers_form_made_before(alice, bob, performance):
    first = hold(alice, performance, "1층 A구역 A열 1번", request_token="form-1")
    hold(alice, performance, "1층 A구역 A열 2번", request_token="form-2")
    bobs = hold(bob, performance, "1층 A구역 A열 3번", request_token="form-1")  # the same token, by chance
    ids = [item.pk for item in seat_items(performance, "1층 A구역 A열 1번", "1층 A구역 A열 4번")]

    def earlier(user, token):
        rows = hold_sql.seat_rows(
            performance_id=performance.pk, item_ids=ids, now=timezone.now(), user_id=user.pk, request_token=token
        )
        return {row[9] for row in rows}

    assert earlier(alice, "form-1") == {first.pk}
    assert earlier(alice, "form-9") == {None}
    assert earlier(bob, "form-1") == {bobs.pk}


def test_claim_takes_only_the_free_seats(alice, bob, performance):
    taken = hold(bob, performance, "1층 A구역 A열 1번")
    held_item, free_item = seat_items(performance, "1층 A구역 A열 1번", "1층 A구역 A열 2번")
    mine = Reservation.objects.create(
        user=alice, performance=performance, expires_at=NOW + dt.timedelta(minutes=10), request_token="t"
    )
    until = NOW + dt.timedelta(minutes=10)

    claimed = hold_sql.claim_seats(
        reservation_id=mine.pk,
        performance_id=performance.pk,
        item_ids=[held_item.pk, free_item.pk],
        held_until=until,
        now=NOW,
    )

    assert claimed == 1
    held_item.refresh_from_db()
    free_item.refresh_from_db()
    assert (held_item.status, held_item.reservation_id) == ("held", taken.pk)
    assert (free_item.status, free_item.held_until, free_item.reservation_id) == ("held", until, mine.pk)


def test_live_places_counts_live_holds_and_bookings_only(alice, bob, performance):
    def count(now, excluding=None):
        return hold_sql.live_places(user_id=alice.pk, performance_id=performance.pk, now=now, excluding=excluding)

    live = hold(alice, performance, "1층 A구역 A열 1번", "1층 A구역 A열 2번", now=NOW)
    ended = hold(alice, performance, "1층 A구역 A열 3번", now=NOW)
    Reservation.objects.filter(pk=ended.pk).update(status="released")
    hold(bob, performance, "1층 A구역 A열 4번", now=NOW)  # someone else's

    assert count(NOW) == 2
    assert count(NOW, excluding=live.pk) == 0
    Reservation.objects.filter(pk=live.pk).update(status="confirmed")
    assert count(NOW + dt.timedelta(days=1)) == 2  # bought places never lapse
    Reservation.objects.filter(pk=live.pk).update(status="held")
    assert count(live.expires_at) == 0  # a hold stops counting the instant it expires


@pytest.mark.parametrize("keeping", [False, True])
def test_taken_ids_agree_with_free_condition(alice, performance, keeping):
    *rows, mine, mine_too = seats(performance, 9)
    kept = hold_items(alice, performance, mine.pk, mine_too.pk)
    states = [
        ("available", None),
        ("held", NOW + dt.timedelta(minutes=5)),
        ("held", NOW - dt.timedelta(seconds=1)),
        ("held", NOW),
        ("held", NOW + dt.timedelta(microseconds=1)),
        ("sold", None),
        ("blocked", None),
    ]
    for item, (status, until) in zip(rows, states, strict=True):
        InventoryItem.objects.filter(pk=item.pk).update(status=status, held_until=until)
    keep = kept.pk if keeping else None

    by_sql = hold_sql.taken_ids(performance_id=performance.pk, now=NOW, keeping=keep)
    by_orm = (
        InventoryItem.objects.filter(performance=performance, seat__isnull=False)
        .exclude(free_condition(NOW, keeping=keep))
        .values_list("pk", flat=True)
    )

    assert sorted(by_sql) == sorted(by_orm)
    kept_ids = set(kept.lines.values_list("item_id", flat=True))
    assert kept_ids.isdisjoint(by_sql) == keeping
    assert {rows[i].pk for i in (1, 4, 5, 6)} <= set(by_sql)
    assert not {rows[i].pk for i in (0, 2, 3)} & set(by_sql)
    standing = InventoryItem.objects.filter(performance=performance, seat__isnull=True).first()
    InventoryItem.objects.filter(pk=standing.pk).update(status="sold")
    assert standing.pk not in hold_sql.taken_ids(performance_id=performance.pk, now=NOW, keeping=keep)
    everything = hold_sql.taken_ids(performance_id=performance.pk, now=NOW, keeping=keep, seats_only=False)
    assert sorted(everything) == sorted([*by_orm, standing.pk])


@pytest.mark.parametrize("seats_only", [True, False])
def test_taken_ids_read_the_not_on_sale_index_alone(seats_only):
    """Every map view and every 409 runs this statement: the plan must be the index range
    of places not on sale, with no row looked up (a quarter of a full hall mid-rush)."""
    from django.db import connection

    from events.tests.factories import EventFactory, LayoutFactory, PerformanceFactory

    layout = LayoutFactory(spec='section "A" x=0 y=0\nrows A-T seats 1-20 grade=R\n')
    event = EventFactory(venue=layout.venue, grades=[("R", 50000)])
    performance = PerformanceFactory(event=event, layout=layout)
    held = seats(performance, 100)
    InventoryItem.objects.filter(pk__in=[item.pk for item in held]).update(
        status="held", held_until=NOW + dt.timedelta(minutes=5)
    )
    params = [performance.pk, connection.ops.adapt_datetimefield_value(NOW), 0]
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute("EXPLAIN " + hold_sql._taken_sql(seats_only), params)
            columns = [column[0] for column in cursor.description]
            plan = dict(zip(columns, cursor.fetchone(), strict=True))
            assert plan["key"] == "inventory_not_on_sale"
            assert "Using index" in plan["Extra"].split("; ")  # not "Using index condition"
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + hold_sql._taken_sql(seats_only), params)
            assert [row[-1] for row in cursor.fetchall()] == [
                "SEARCH i USING COVERING INDEX inventory_not_on_sale (performance_id=?)"
            ]
    assert len(hold_sql.taken_ids(performance_id=performance.pk, now=NOW, seats_only=seats_only)) == 100
