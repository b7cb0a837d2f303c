import datetime as dt

import pytest
from django.utils import timezone

from events.models import Event, Performance, PriceGrade
from events.tests.factories import PerformanceFactory, UserFactory
from reservations.models import InventoryItem, Reservation
from reservations.services import (
    InvalidTransition,
    OverLimit,
    PerformanceGone,
    ReservationError,
    SeatsTaken,
    Selection,
    best_available_seats,
    holds_expire,
    inventory_block,
    inventory_unblock,
    reservation_await_payment,
    reservation_cancel,
    reservation_confirm,
    reservation_hold,
    reservation_hold_best_available,
    reservation_release,
)
from reservations.tests.factories import hold, seat_items, token

pytestmark = pytest.mark.django_db

A1, A2, A3, A4, A5 = (f"1층 A구역 A열 {n}번" for n in range(1, 6))
B1 = "1층 A구역 B열 1번"
C1 = "1층 A구역 C열 1번"
STANDING = "스탠딩"


def standing_zone(performance):
    return performance.layout.sections.get(kind="standing")


def statuses(performance):
    return dict(
        InventoryItem.objects.filter(performance=performance, seat__isnull=False).values_list("seat__label", "status")
    )


def test_hold_claims_seats_prices_them_and_starts_the_clock(alice, performance):
    now = timezone.now()
    reservation = hold(alice, performance, A1, C1, now=now)
    assert reservation.status == Reservation.Status.HELD
    assert reservation.expires_at == now + dt.timedelta(minutes=10)
    assert [line.label for line in reservation.lines.all()] == [A1, C1]
    assert [(line.grade_code, line.price) for line in reservation.lines.all()] == [("R", 120000), ("S", 90000)]
    reservation.refresh_from_db()
    assert reservation.ticket_amount == 210000
    assert reservation.fee_amount == 2 * 2000
    assert reservation.total_amount == 214000
    items = InventoryItem.objects.filter(reservation=reservation)
    assert set(items.values_list("status", flat=True)) == {"held"}
    assert set(items.values_list("held_until", flat=True)) == {reservation.expires_at}
    assert list(reservation.transitions.values_list("from_status", "to_status", "actor")) == [("", "held", alice.pk)]


def test_hold_uses_the_events_hold_time_and_fee(alice, performance):
    Event.objects.filter(pk=performance.event_id).update(hold_minutes=3, booking_fee=1000)
    performance.event.refresh_from_db()
    now = timezone.now()
    reservation = hold(alice, performance, A1, now=now)
    assert reservation.expires_at == now + dt.timedelta(minutes=3)
    assert reservation.fee_amount == 1000


def test_hold_standing_places(alice, performance):
    zone = standing_zone(performance)
    reservation = hold(alice, performance, standing=[(zone.pk, 2)])
    assert reservation.lines.count() == 2
    assert reservation.lines.first().label == "1층 스탠딩 (standing)"
    assert reservation.total_amount == 2 * 80000 + 2 * 2000


def test_a_seat_just_taken_is_named_and_nothing_changes(alice, bob, performance):
    first = hold(alice, performance, A1, A2)
    with pytest.raises(SeatsTaken) as excinfo:
        hold(bob, performance, A2, A3)
    assert excinfo.value.labels == [A2]
    assert A2 in excinfo.value.message
    assert statuses(performance)[A3] == "available"
    assert not Reservation.objects.filter(user=bob).exists()
    assert set(InventoryItem.objects.filter(reservation=first).values_list("seat__label", flat=True)) == {A1, A2}


def test_a_seat_the_customer_already_has_is_not_said_to_be_someone_elses(alice, bob, performance):
    # A second tab: the seat is hers already, in a hold (or a booking) of her own.
    mine = hold(alice, performance, A1)
    with pytest.raises(SeatsTaken) as excinfo:
        hold(alice, performance, A1)
    assert excinfo.value.message == (f"You already have this seat in another of your bookings: {A1}. See My bookings.")
    reservation_confirm(reservation=mine)
    with pytest.raises(SeatsTaken, match="You already have this seat"):
        hold(alice, performance, A1, A3)
    # Mixed with someone else's seat, that one is named as taken; both are greyed out.
    hold(bob, performance, A2)
    with pytest.raises(SeatsTaken) as excinfo:
        hold(alice, performance, A1, A2)
    assert excinfo.value.message == f"Sorry, this seat was just taken by someone else: {A2}. Please choose another."
    assert sorted(excinfo.value.labels) == [A1, A2]
    assert Reservation.objects.filter(user=alice).count() == 1


def test_a_seat_of_the_customers_own_expired_hold_is_free_to_hold_again(alice, performance):
    stale = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(minutes=11))
    fresh = hold(alice, performance, A1)
    assert fresh.pk != stale.pk and InventoryItem.objects.get(reservation=fresh).seat.label == A1


def test_an_expired_hold_frees_its_seats_at_once_without_the_sweeper(alice, bob, performance):
    then = timezone.now() - dt.timedelta(minutes=11)
    stale = hold(alice, performance, A1, now=then)
    fresh = hold(bob, performance, A1)
    assert InventoryItem.objects.get(seat__label=A1, performance=performance).reservation == fresh
    stale.refresh_from_db()
    assert stale.status == "held" and stale.is_expired()
    assert stale.effective_status() == "expired"


def test_standing_zone_never_sells_past_capacity(alice, bob, performance):
    zone = standing_zone(performance)
    hold(alice, performance, standing=[(zone.pk, 3)])
    with pytest.raises(ReservationError, match="has only 1 place left"):
        hold(bob, performance, standing=[(zone.pk, 2)])
    hold(bob, performance, standing=[(zone.pk, 1)])
    with pytest.raises(ReservationError, match="sold out"):
        hold(UserFactory(), performance, standing=[(zone.pk, 1)])
    assert InventoryItem.objects.filter(section=zone, performance=performance, status="held").count() == 4


def test_per_customer_limit_counts_live_places_only(alice, performance):
    with pytest.raises(ReservationError, match="at most 4 tickets"):
        hold(alice, performance, A1, A2, A3, A4, A5)
    first = hold(alice, performance, A1, A2)
    with pytest.raises(ReservationError, match="you already have 2"):
        hold(alice, performance, A3, A4, A5)
    reservation_release(reservation=first, actor=alice)
    hold(alice, performance, A3, A4, A5)  # released places no longer count


def test_expired_holds_do_not_count_against_the_limit(alice, performance):
    hold(alice, performance, A1, A2, A3, now=timezone.now() - dt.timedelta(minutes=30))
    assert hold(alice, performance, A4, A5, B1).lines.count() == 3


def test_confirmed_places_count_against_the_limit(alice, performance):
    reservation_confirm(reservation=hold(alice, performance, A1, A2, A3))
    with pytest.raises(ReservationError, match="you already have 3"):
        hold(alice, performance, A4, A5)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (Selection(), "Choose at least one seat"),
        (Selection(standing=((0, 0),)), "Choose at least one seat"),
        (Selection(item_ids=(999999,)), "not part of this performance"),
    ],
)
def test_bad_selections_are_refused(alice, performance, selection, message):
    with pytest.raises(ReservationError, match=message):
        reservation_hold(user=alice, performance=performance, selection=selection, request_token=token())
    assert not Reservation.objects.exists()


def test_duplicated_or_foreign_seats_are_refused(alice, performance):
    (a1,) = seat_items(performance, A1)
    with pytest.raises(ReservationError, match="sent twice"):
        reservation_hold(
            user=alice, performance=performance, selection=Selection(item_ids=(a1.pk, a1.pk)), request_token=token()
        )
    other = PerformanceFactory(event=performance.event, layout=performance.layout)
    (foreign,) = seat_items(other, A1)
    with pytest.raises(ReservationError, match="not part of this performance"):
        reservation_hold(
            user=alice,
            performance=performance,
            selection=Selection(item_ids=(a1.pk, foreign.pk)),
            request_token=token(),
        )
    with pytest.raises(ReservationError, match="standing zone is not part"):
        zone_of_other_layout = PerformanceFactory().layout.sections.first()
        reservation_hold(
            user=alice,
            performance=performance,
            selection=Selection(standing=((zone_of_other_layout.pk, 1),)),
            request_token=token(),
        )
    with pytest.raises(ReservationError, match="cannot be negative"):
        reservation_hold(
            user=alice,
            performance=performance,
            selection=Selection(item_ids=(a1.pk,), standing=((standing_zone(performance).pk, -1),)),
            request_token=token(),
        )
    assert not Reservation.objects.exists()
    assert statuses(performance)[A1] == "available"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": Performance.Status.SCHEDULED}, "not opened yet"),
        ({"sales_open_at": timezone.now() + dt.timedelta(hours=1)}, "not opened yet"),
        ({"status": Performance.Status.CLOSED}, "closed"),
        ({"sales_close_at": timezone.now() - dt.timedelta(minutes=1)}, "closed"),
        ({"status": Performance.Status.CANCELLED}, "cancelled"),
        ({"status": Performance.Status.SOLD_OUT}, "sold out"),
    ],
)
def test_sales_window_and_status_are_enforced(alice, performance, change, message):
    Performance.objects.filter(pk=performance.pk).update(**change)
    performance.refresh_from_db()
    with pytest.raises(ReservationError, match=message):
        hold(alice, performance, A1)
    assert statuses(performance)[A1] == "available"


def test_past_performances_and_unpublished_events_cannot_be_booked(alice, performance):
    with pytest.raises(ReservationError, match="already started"):
        hold(alice, performance, A1, now=performance.starts_at + dt.timedelta(minutes=1))
    Event.objects.filter(pk=performance.event_id).update(status=Event.Status.DRAFT)
    performance.event.refresh_from_db()
    with pytest.raises(ReservationError, match="not on sale"):
        hold(alice, performance, A1)


def test_a_double_submitted_form_holds_once(alice, performance):
    zone = standing_zone(performance)
    once = hold(alice, performance, A1, C1, standing=[(zone.pk, 1)], request_token="same-form")
    # The same places (in another order, a zone at zero left in) are the same form.
    twice = hold(alice, performance, C1, A1, standing=[(zone.pk, 1), (zone.pk + 99, 0)], request_token="same-form")
    assert once.pk == twice.pk
    assert Reservation.objects.count() == 1


@pytest.mark.parametrize(
    ("labels", "standing"),
    [((A1, A2), 0), ((A2,), 0), ((A1,), 1), ((), 1)],
    ids=["a seat more", "another seat", "standing added", "seats for standing"],
)
def test_a_used_form_sent_again_for_other_places_is_refused(alice, performance, labels, standing):
    # A page kept by the browser after its hold was made, then used again.
    first = hold(alice, performance, A1, request_token="kept-form")
    zone = standing_zone(performance)
    with pytest.raises(ReservationError, match=f"already sent, and made booking {first.code}"):
        hold(alice, performance, *labels, standing=[(zone.pk, standing)], request_token="kept-form")
    assert list(Reservation.objects.values_list("pk", flat=True)) == [first.pk]
    assert InventoryItem.objects.filter(performance=performance, status="held").count() == 1


def test_best_available_sent_twice_holds_once(alice, performance):
    grade = PriceGrade.objects.get(event=performance.event, code="R")
    once, twice = (
        reservation_hold_best_available(
            user=alice, performance=performance, grade=grade, quantity=2, request_token="best-form"
        )
        for _ in range(2)
    )
    assert once.pk == twice.pk
    assert InventoryItem.objects.filter(performance=performance, status="held").count() == 2
    # The same page's token sent for something else: refused, naming the booking.
    other_grade = PriceGrade.objects.filter(event=performance.event).exclude(code="R").first()
    for asked_grade, quantity in ((grade, 3), (other_grade, 2)):
        with pytest.raises(ReservationError, match=f"already sent, and made booking {once.code}"):
            reservation_hold_best_available(
                user=alice, performance=performance, grade=asked_grade, quantity=quantity, request_token="best-form"
            )
    seat_form = hold(alice, performance, C1, request_token="seat-form")
    with pytest.raises(ReservationError, match=f"made booking {seat_form.code}"):
        reservation_hold_best_available(
            user=alice, performance=performance, grade=grade, quantity=1, request_token="seat-form"
        )


def _expire(reservation):
    past = timezone.now() - dt.timedelta(seconds=1)
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=past)
    InventoryItem.objects.filter(reservation=reservation).update(held_until=past)


@pytest.mark.parametrize("meanwhile", ["sales closed", "hold expired", "hold expired and seat taken", "standing"])
def test_a_form_submitted_again_gets_its_first_answer_whatever_happened_since(alice, bob, performance, meanwhile):
    zone = standing_zone(performance)
    standing = [(zone.pk, 1)] if meanwhile == "standing" else ()
    labels = () if meanwhile == "standing" else (A1,)
    first = hold(alice, performance, *labels, standing=standing, request_token="form-1")
    if meanwhile == "sales closed":
        Performance.objects.filter(pk=performance.pk).update(status=Performance.Status.SOLD_OUT)
        performance.refresh_from_db()
    if meanwhile.startswith("hold expired"):
        _expire(first)
    if meanwhile == "hold expired and seat taken":
        hold(bob, performance, A1)

    again = hold(alice, performance, *labels, standing=standing, request_token="form-1")

    assert again.pk == first.pk
    assert Reservation.objects.filter(user=alice).count() == 1


def test_a_repeated_token_met_at_the_insert_inside_a_callers_transaction(alice, performance, monkeypatch):
    from django.db import transaction

    from reservations import hold_sql

    first = hold(alice, performance, A1, request_token="form-1")
    _expire(first)
    # As if the first submission committed just after the second one read: the read
    # sees no earlier reservation, and the unique token stops the INSERT instead.
    read = hold_sql.seat_rows
    monkeypatch.setattr(hold_sql, "seat_rows", lambda **kw: [(*row[:9], None, *row[10:]) for row in read(**kw)])
    with transaction.atomic():
        again = hold(alice, performance, A1, request_token="form-1")
        assert again.pk == first.pk
        assert Reservation.objects.filter(user=alice).count() == 1  # the outer transaction still works
    assert InventoryItem.objects.get(pk=seat_items(performance, A1)[0].pk).reservation_id == first.pk


def test_seats_and_standing_places_in_one_hold_are_priced_together(alice, performance):
    zone = standing_zone(performance)
    reservation = hold(alice, performance, A1, C1, standing=[(zone.pk, 2)])
    reservation.refresh_from_db()
    assert [line.label for line in reservation.lines.all()] == ["1층 스탠딩 (standing)"] * 2 + [A1, C1]
    assert reservation.ticket_amount == 120000 + 90000 + 2 * 80000
    assert reservation.fee_amount == 4 * 2000
    assert reservation.total_amount == reservation.ticket_amount + reservation.fee_amount


def test_changing_seats_swaps_the_hold_in_one_step(alice, bob, performance):
    first = hold(alice, performance, A1, A2)
    second = hold(alice, performance, A2, A3, A4, A5, replace=first)  # four, as the first no longer counts
    first.refresh_from_db()
    assert first.status == "released"
    assert set(InventoryItem.objects.filter(reservation=second).values_list("seat__label", flat=True)) == {
        A2,
        A3,
        A4,
        A5,
    }
    assert statuses(performance)[A1] == "available"


def test_changing_to_taken_seats_keeps_the_old_hold(alice, bob, performance):
    first = hold(alice, performance, A1)
    hold(bob, performance, A3)
    with pytest.raises(SeatsTaken):
        hold(alice, performance, A2, A3, replace=first)
    first.refresh_from_db()
    assert first.status == "held"
    assert statuses(performance)[A1] == "held"
    assert statuses(performance)[A2] == "available"


def test_someone_elses_hold_cannot_be_replaced(alice, bob, performance):
    bobs = hold(bob, performance, A1)
    with pytest.raises(ReservationError, match="cannot be changed here"):
        hold(alice, performance, A2, replace=bobs)
    bobs.refresh_from_db()
    assert bobs.status == "held"


def test_release_frees_seats_and_records_who(alice, performance):
    reservation = hold(alice, performance, A1)
    reservation_release(reservation=reservation, actor=alice, reason="changed my mind")
    reservation.refresh_from_db()
    assert reservation.status == "released"
    assert statuses(performance)[A1] == "available"
    last = reservation.transitions.last()
    assert (last.from_status, last.to_status, last.actor, last.reason) == ("held", "released", alice, "changed my mind")
    with pytest.raises(InvalidTransition):
        reservation_release(reservation=reservation, actor=alice)


def test_releasing_an_expired_hold_says_so_and_records_expiry(alice, performance):
    reservation = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(hours=1))
    with pytest.raises(ReservationError, match="already expired"):
        reservation_release(reservation=reservation, actor=alice)
    reservation.refresh_from_db()
    assert reservation.status == "expired"
    assert statuses(performance)[A1] == "available"


def test_confirm_sells_the_places(alice, performance):
    reservation = hold(alice, performance, A1, A2)
    reservation_confirm(reservation=reservation)
    reservation.refresh_from_db()
    assert reservation.status == "confirmed" and reservation.confirmed_at
    assert {statuses(performance)[A1], statuses(performance)[A2]} == {"sold"}
    assert list(reservation.transitions.values_list("to_status", flat=True)) == ["held", "pending_payment", "confirmed"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": Performance.Status.CANCELLED}, "has been cancelled"),
        ({"starts_at": timezone.now(), "sales_close_at": timezone.now() - dt.timedelta(minutes=1)}, "already started"),
    ],
)
def test_nothing_is_confirmed_for_a_cancelled_or_started_performance(alice, performance, change, message):
    reservation = hold(alice, performance, A1)
    Performance.objects.filter(pk=performance.pk).update(**change)
    with pytest.raises(PerformanceGone, match=message):
        reservation_confirm(reservation=reservation)
    reservation.refresh_from_db()
    assert reservation.status == "held"  # the savepoint took the pending_payment step back
    assert statuses(performance)[A1] == "held"


def test_a_late_payment_confirms_if_nobody_took_the_seats(alice, performance):
    reservation = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(hours=1))
    reservation_confirm(reservation=reservation)
    assert statuses(performance)[A1] == "sold"


def test_a_late_payment_past_the_limit_is_refused_and_changes_nothing(alice, performance):
    """Found by the property test: a hold expires, its places stop counting, the customer
    holds up to the limit again, then the first hold's payment arrives."""
    performance.event.ticket_limit = 3
    performance.event.save(update_fields=["ticket_limit"])
    late = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(hours=1))
    hold(alice, performance, A2, A3, A4)

    with pytest.raises(OverLimit, match="past the limit of 3 tickets"):
        reservation_confirm(reservation=late)

    late.refresh_from_db()
    assert late.status == "held" and not late.confirmed_at  # rolled back: payments will refund
    assert statuses(performance)[A1] == "held"
    assert list(late.transitions.values_list("to_status", flat=True)) == ["held"]


def test_a_late_payment_within_the_limit_still_confirms(alice, performance):
    performance.event.ticket_limit = 3
    performance.event.save(update_fields=["ticket_limit"])
    late = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(hours=1))
    hold(alice, performance, A2, A3)

    reservation_confirm(reservation=late)

    assert statuses(performance)[A1] == "sold"


def test_a_late_payment_fails_if_the_seats_were_taken(alice, bob, performance):
    reservation = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(hours=1))
    hold(bob, performance, A1)
    with pytest.raises(ReservationError, match="released before payment arrived"):
        reservation_confirm(reservation=reservation)
    reservation.refresh_from_db()
    assert reservation.status == "held"  # rolled back: payments will refund
    assert InventoryItem.objects.get(performance=performance, seat__label=A1).reservation.user == bob


def test_awaiting_payment_can_extend_the_hold_to_a_deposit_deadline(alice, performance):
    reservation = hold(alice, performance, A1)
    deadline = timezone.now() + dt.timedelta(days=1)
    reservation_await_payment(reservation=reservation, until=deadline)
    reservation.refresh_from_db()
    assert reservation.status == "pending_payment"
    assert reservation.expires_at == deadline
    assert InventoryItem.objects.get(reservation=reservation).held_until == deadline


def test_cancel_returns_seats_to_sale(alice, bob, performance):
    reservation = reservation_confirm(reservation=hold(alice, performance, A1))
    reservation_cancel(reservation=reservation, actor=alice, reason="can't make it")
    reservation.refresh_from_db()
    assert reservation.status == "cancelled" and reservation.cancelled_at
    assert statuses(performance)[A1] == "available"
    hold(bob, performance, A1)
    with pytest.raises(InvalidTransition):
        reservation_cancel(reservation=hold(alice, performance, A2), actor=alice)


def test_sweeper_records_expired_holds_once(alice, bob, performance):
    old = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(minutes=11))
    live = hold(bob, performance, A2)
    assert holds_expire() == 1
    assert holds_expire() == 0
    old.refresh_from_db()
    live.refresh_from_db()
    assert (old.status, live.status) == ("expired", "held")
    assert statuses(performance)[A1] == "available"
    assert old.transitions.last().reason == "hold time ran out"


@pytest.mark.django_db(transaction=True)  # retried only outside a caller's transaction
def test_a_deadlock_in_the_sweep_is_retried_and_never_stops_the_rest(alice, bob, performance, monkeypatch, caplog):
    from django.db import OperationalError

    from reservations import services

    unlucky = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(minutes=11))
    retried = hold(bob, performance, A2, now=timezone.now() - dt.timedelta(minutes=11))
    later = hold(UserFactory(), performance, A3, now=timezone.now() - dt.timedelta(minutes=11))
    deadlocks = {unlucky.pk: 99, retried.pk: 1}  # how many times MariaDB picks each as the victim
    free_items = services._free_items

    def sometimes_a_deadlock(reservation):
        if deadlocks.get(reservation.pk, 0) > 0:
            deadlocks[reservation.pk] -= 1
            raise OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")
        return free_items(reservation)

    monkeypatch.setattr(services, "_free_items", sometimes_a_deadlock)
    monkeypatch.setattr(services.time, "sleep", lambda seconds: None)

    assert holds_expire() == 2
    statuses_now = dict(Reservation.objects.values_list("pk", "status"))
    assert statuses_now == {unlucky.pk: "held", retried.pk: "expired", later.pk: "expired"}
    assert f"expiring reservation {unlucky.pk} gave up" in caplog.text
    deadlocks.clear()
    assert holds_expire() == 1  # the next sweep gets it
    assert Reservation.objects.get(pk=unlucky.pk).status == "expired"


def test_sweeper_lets_go_of_holds_on_a_cancelled_performance(alice, bob, performance):
    # Made in the second before the cancellation reached this process.
    late = hold(alice, performance, A1)
    elsewhere = hold(bob, PerformanceFactory(event=performance.event, layout=performance.layout), A1)
    Performance.objects.filter(pk=performance.pk).update(status=Performance.Status.CANCELLED)
    assert holds_expire() == 1
    late.refresh_from_db()
    assert late.status == "released" and late.transitions.last().reason == "performance cancelled"
    assert statuses(performance)[A1] == "available"
    assert Reservation.objects.get(pk=elsewhere.pk).status == "held"
    assert holds_expire() == 0


def test_sweeper_leaves_seats_someone_else_took_since(alice, bob, performance):
    old = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(minutes=11))
    new = hold(bob, performance, A1)
    holds_expire()
    old.refresh_from_db()
    assert old.status == "expired"
    assert InventoryItem.objects.get(performance=performance, seat__label=A1).reservation == new


def test_blocked_seats_cannot_be_held_and_taken_seats_are_not_blocked(alice, bob, performance):
    a1, a2 = seat_items(performance, A1, A2)
    hold(alice, performance, A2)
    assert inventory_block(performance=performance, item_ids=[a1.pk, a2.pk]) == [a1.pk]
    with pytest.raises(SeatsTaken):
        hold(bob, performance, A1)
    assert inventory_unblock(performance=performance, item_ids=[a1.pk, a2.pk]) == [a1.pk]
    hold(bob, performance, A1)


def seat_labels(item_ids):
    return set(InventoryItem.objects.filter(pk__in=item_ids).values_list("seat__label", flat=True))


def test_best_available_picks_adjacent_seats_near_the_stage_and_centre(alice, performance):
    grade = PriceGrade.objects.get(event=performance.event, code="R")
    reservation = reservation_hold_best_available(
        user=alice, performance=performance, grade=grade, quantity=3, request_token=token()
    )
    labels = [line.label for line in reservation.lines.all()]
    # Front row; A2-A4 would strand A1 and A5, and the hall's centre lies to the right
    # of this section (the standing zone in front is wider), so A3-A5 it is.
    assert labels == [A3, A4, A5]


def test_best_available_avoids_stranding_a_single_seat(alice, bob, performance):
    grade = PriceGrade.objects.get(event=performance.event, code="R")
    hold(bob, performance, A3)  # row A: 1 2 _ 4 5 ; a pair at 1-2 or 4-5 strands nothing
    blocks = best_available_seats(performance=performance, grade=grade, quantity=2)
    first = {item.seat.label for item in InventoryItem.objects.filter(pk__in=blocks[0]).select_related("seat")}
    assert first in ({A1, A2}, {A4, A5})
    hold(bob, performance, A1)  # row A: _ 2 _ 4 5 ; a single seat in row A cannot be avoided
    blocks = best_available_seats(performance=performance, grade=grade, quantity=1)
    single = InventoryItem.objects.get(pk=blocks[0][0]).seat.label
    assert single == A2  # taking the stranded seat leaves no single gap


def test_best_available_never_hands_out_wheelchair_spaces(alice, performance):
    from events.models import Seat

    grade = PriceGrade.objects.get(event=performance.event, code="R")
    Seat.objects.filter(layout=performance.layout, label__in=[A3, A4]).update(is_accessible=True)
    blocks = best_available_seats(performance=performance, grade=grade, quantity=2)
    handed = {label for block in blocks for label in seat_labels(block)}
    assert handed and not handed & {A3, A4}
    # They stay on sale on the map, for whoever needs them.
    assert hold(alice, performance, A3).lines.get().label == A3


def test_best_available_says_when_no_block_fits(alice, performance):
    grade = PriceGrade.objects.get(event=performance.event, code="S")
    with pytest.raises(ReservationError, match="no 4 seats together left in S석"):
        hold_all_but_two_of_row_c(performance)
        reservation_hold_best_available(
            user=alice, performance=performance, grade=grade, quantity=4, request_token=token()
        )


def hold_all_but_two_of_row_c(performance):
    hold(UserFactory(), performance, "1층 A구역 C열 2번", "1층 A구역 C열 4번")


def test_a_deadline_is_not_moved_over_places_others_took(alice, bob, performance):
    """By the payment's clock the hold is still live; by the other buyer's it had ended
    and they took one of its seats: the virtual account's deadline does not extend it."""
    from reservations.services import reservation_await_payment

    start = timezone.now()
    reservation = hold(alice, performance, A1, A2, now=start)
    later = reservation.expires_at + dt.timedelta(seconds=1)
    hold(bob, performance, A2, now=later)  # bob's clock: alice's hold is over
    with pytest.raises(ReservationError, match="Your hold has expired"):
        reservation_await_payment(reservation=reservation, until=start + dt.timedelta(days=1), now=start)
    reservation.refresh_from_db()
    assert reservation.expires_at < start + dt.timedelta(hours=1)
    assert InventoryItem.objects.get(performance=performance, seat__label=A2).reservation.user == bob
