"""Ticket types at checkout: each ticket of a hold at its full price or a discount."""

import re

import pytest
from django.urls import reverse

from events.models import Discount
from events.tests.factories import EventFactory, PerformanceFactory
from reservations.models import Reservation, ReservationLine
from reservations.services import (
    ReservationError,
    discount_options,
    reservation_await_payment,
    reservation_choose_discounts,
)
from reservations.tests.factories import hold

pytestmark = pytest.mark.django_db

A1, A2, A3 = (f"1층 A구역 A열 {n}번" for n in range(1, 4))
C1 = "1층 A구역 C열 1번"  # grade S


@pytest.fixture
def youth(performance):
    return Discount.objects.create(event=performance.event, name="청소년 할인", percent_off=20)


@pytest.fixture
def disabled(performance):
    """Half price for grade R only, two tickets per booking at most."""
    discount = Discount.objects.create(event=performance.event, name="장애인 할인", percent_off=50, per_booking=2)
    discount.grades.set(performance.event.grades.filter(code="R"))
    return discount


def lines_of(reservation):
    return list(reservation.lines.order_by("id"))


def prices(reservation):
    return [(line.discount_name, line.list_price, line.price) for line in lines_of(reservation)]


def choose(reservation, *discounts):
    """One choice per line, in line order: a Discount or None (full price)."""
    choices = {line.pk: (d.pk if d else None) for line, d in zip(lines_of(reservation), discounts, strict=True)}
    return reservation_choose_discounts(reservation=reservation, choices=choices)


def test_a_discount_lowers_the_ticket_and_the_total_but_not_the_booking_fee(alice, performance, youth):
    reservation = hold(alice, performance, A1, C1)
    assert reservation.total_amount == 120000 + 90000 + 2 * 2000

    choose(reservation, youth, None)

    reservation.refresh_from_db()
    assert prices(reservation) == [("청소년 할인", 120000, 96000), ("", 90000, 90000)]
    assert lines_of(reservation)[0].discount == youth
    assert (reservation.ticket_amount, reservation.fee_amount) == (96000 + 90000, 4000)
    assert reservation.total_amount == 96000 + 90000 + 4000


def test_choosing_the_full_price_again_undoes_a_discount(alice, performance, youth):
    reservation = hold(alice, performance, A1)
    choose(reservation, youth)
    choose(reservation, None)
    reservation.refresh_from_db()
    assert prices(reservation) == [("", 120000, 120000)]
    assert reservation.total_amount == 122000


def test_options_follow_the_grade_and_skip_withdrawn_discounts(alice, performance, youth, disabled):
    Discount.objects.create(event=performance.event, name="조기 종료", percent_off=10, is_active=False)
    other_event = EventFactory(grades=[("R", 1000)])
    Discount.objects.create(event=other_event, name="다른 공연 할인", percent_off=30)
    reservation = hold(alice, performance, A1, C1)
    r_line, s_line = lines_of(reservation)

    options = discount_options(reservation=reservation, lines=lines_of(reservation))

    assert [(d.name, price) for d, price in options[r_line.pk]] == [("청소년 할인", 96000), ("장애인 할인", 60000)]
    assert [(d.name, price) for d, price in options[s_line.pk]] == [("청소년 할인", 72000)]


def test_a_discount_that_would_make_a_ticket_free_is_not_offered(alice, performance):
    Discount.objects.create(event=performance.event, name="초대", amount_off=120000)
    reservation = hold(alice, performance, A1)
    assert discount_options(reservation=reservation, lines=lines_of(reservation)) == {lines_of(reservation)[0].pk: []}


def test_amount_off_and_percent_round_in_the_customers_favour():
    assert Discount(percent_off=15).price_for(99999) == 84999  # 84,999.15 -> 84,999
    assert Discount(amount_off=5000).price_for(3000) == 0
    assert Discount(amount_off=5000).price_for(120000) == 115000


@pytest.mark.parametrize(
    "why",
    ["wrong grade", "withdrawn", "other event", "too many", "missing line", "foreign line"],
)
def test_a_bad_choice_is_refused_and_changes_nothing(alice, bob, performance, youth, disabled, why):
    reservation = hold(alice, performance, A1, A2, A3) if why == "too many" else hold(alice, performance, A1, C1)
    lines = lines_of(reservation)
    choices = {line.pk: None for line in lines}
    if why == "wrong grade":
        choices[lines[1].pk] = disabled.pk  # C1 is grade S; the discount is for R only
        expected = "not offered for 1층 A구역 C열 1번"
    elif why == "withdrawn":
        Discount.objects.filter(pk=youth.pk).update(is_active=False)
        choices[lines[0].pk] = youth.pk
        expected = "not offered"
    elif why == "other event":
        elsewhere = Discount.objects.create(event=EventFactory(grades=[("R", 1000)]), name="남의 할인", percent_off=50)
        choices[lines[0].pk] = elsewhere.pk
        expected = "not offered"
    elif why == "too many":
        choices = {line.pk: disabled.pk for line in lines}
        expected = "장애인 할인 is for at most 2 tickets per booking."
    elif why == "missing line":
        del choices[lines[1].pk]
        expected = "out of date"
    else:
        someone_elses = lines_of(hold(bob, performance, A2))[0]
        choices[someone_elses.pk] = None
        expected = "out of date"
    before = prices(reservation)

    with pytest.raises(ReservationError, match=expected):
        reservation_choose_discounts(reservation=reservation, choices=choices)

    reservation.refresh_from_db()
    assert prices(reservation) == before
    assert reservation.total_amount == sum(p for _n, _l, p in before) + reservation.fee_amount


def test_ticket_types_are_fixed_once_a_payment_is_started(alice, performance, youth):
    reservation = hold(alice, performance, A1)
    reservation_await_payment(reservation=reservation)
    with pytest.raises(ReservationError, match="payment has been started"):
        choose(reservation, youth)
    assert prices(reservation) == [("", 120000, 120000)]


@pytest.mark.parametrize("status", ["expired", "released", "confirmed"])
def test_ticket_types_of_a_hold_that_ended_cannot_change(alice, performance, youth, status):
    reservation = hold(alice, performance, A1)
    Reservation.objects.filter(pk=reservation.pk).update(status=status)
    with pytest.raises(ReservationError, match="paid" if status == "confirmed" else "ended"):
        choose(reservation, youth)
    assert prices(reservation) == [("", 120000, 120000)]


def test_lines_keep_what_they_were_sold_at_when_the_discount_changes(alice, performance, youth):
    reservation = hold(alice, performance, A1)
    choose(reservation, youth)
    youth.percent_off = 50
    youth.name = "청소년 특가"
    youth.save()
    youth.delete()
    line = ReservationLine.objects.get(reservation=reservation)
    assert (line.discount_id, line.discount_name, line.price) == (None, "청소년 할인", 96000)


# --- The checkout page --------------------------------------------------------------


def test_checkout_offers_ticket_types_and_applying_one_changes_the_total(client, alice, performance, youth, disabled):
    reservation = hold(alice, performance, A1, C1)
    r_line, s_line = lines_of(reservation)
    client.force_login(alice)

    page = client.get(reverse("reservations:detail", args=[reservation.code])).content.decode()
    assert 'id="discount-form"' in page
    assert f'name="discount-{r_line.pk}"' in page
    assert "장애인 할인 (50%)" in page
    assert "at most 2 tickets per booking" in page

    response = client.post(
        reverse("reservations:discounts", args=[reservation.code]),
        {f"discount-{r_line.pk}": str(disabled.pk), f"discount-{s_line.pk}": str(youth.pk)},
        follow=True,
    )

    page = response.content.decode()
    assert "Ticket types saved. The total to pay is now ₩136,000." in page
    reservation.refresh_from_db()
    assert reservation.total_amount == 60000 + 72000 + 4000
    assert re.search(r"Pay ₩136,000", page)
    assert "장애인 할인 × 1" in page
    assert page.count("selected>장애인") == 1  # the choice is shown as made


def test_a_tampered_ticket_type_redraws_checkout_with_the_error(client, alice, performance, youth, disabled):
    reservation = hold(alice, performance, A1, C1)
    r_line, s_line = lines_of(reservation)
    client.force_login(alice)

    response = client.post(
        reverse("reservations:discounts", args=[reservation.code]),
        {f"discount-{r_line.pk}": "", f"discount-{s_line.pk}": str(disabled.pk)},  # R only
    )

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.total_amount == 214000


def test_too_many_of_a_discount_is_named_on_the_redrawn_page(client, alice, performance, disabled):
    reservation = hold(alice, performance, A1, A2, A3)
    client.force_login(alice)
    response = client.post(
        reverse("reservations:discounts", args=[reservation.code]),
        {f"discount-{line.pk}": str(disabled.pk) for line in lines_of(reservation)},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "장애인 할인 is for at most 2 tickets per booking." in page
    assert page.count("selected>장애인") == 0  # the boxes show the ticket types as they still are
    reservation.refresh_from_db()
    assert reservation.total_amount == 3 * 122000


def test_ticket_types_belong_to_the_booking_owner(client, alice, bob, performance, youth):
    reservation = hold(alice, performance, A1)
    url = reverse("reservations:discounts", args=[reservation.code])
    data = {f"discount-{lines_of(reservation)[0].pk}": str(youth.pk)}

    anonymous = client.post(url, data)
    assert anonymous.status_code == 302 and reverse("account_login") in anonymous["Location"]
    client.force_login(bob)
    assert client.post(url, data).status_code == 404
    client.force_login(alice)
    assert client.get(url)["Location"] == reservation.get_absolute_url()  # e.g. after a language switch
    assert client.post(url, data).status_code == 302

    reservation.refresh_from_db()
    assert reservation.total_amount == 96000 + 2000


def test_no_ticket_types_box_without_discounts_or_once_paying(client, alice, performance, youth):
    grades = [("R", 50000), ("S", 40000), ("ST", 30000)]
    plain = PerformanceFactory(
        event=EventFactory(grades=grades, venue=performance.layout.venue), layout=performance.layout
    )
    client.force_login(alice)
    other = hold(alice, plain, A1)
    assert 'id="discount-form"' not in client.get(other.get_absolute_url()).content.decode()

    reservation = hold(alice, performance, A2)
    reservation_await_payment(reservation=reservation)
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert 'id="discount-form"' not in page


def test_a_paid_booking_says_which_proof_to_bring(client, alice, performance, youth):
    youth.conditions = "만 13~18세 · 학생증 확인"
    youth.save()
    reservation = hold(alice, performance, A1)
    choose(reservation, youth)
    Reservation.objects.filter(pk=reservation.pk).update(status="confirmed")
    client.force_login(alice)
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert 'id="discount-proof"' in page
    assert "만 13~18세 · 학생증 확인" in page


def test_the_event_page_lists_its_discounts(client, performance, youth, disabled):
    youth.conditions = "만 13~18세"
    youth.save()
    page = client.get(performance.event.get_absolute_url()).content.decode()
    assert 'id="discount-list"' in page
    assert "청소년 할인</strong> 20%" in page and "만 13~18세" in page
    assert "장애인 할인</strong> 50%" in page and "at most 2 tickets per booking" in page


def test_checkout_queries_do_not_grow_with_tickets_or_discounts(client, alice, bob, performance, youth, disabled):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(user, *labels):
        reservation = hold(user, performance, *labels)
        client.force_login(user)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reservation.get_absolute_url()).status_code == 200
        return len(captured)

    one = queries(alice, A1)
    Discount.objects.create(event=performance.event, name="조기예매", amount_off=5000)
    assert queries(bob, A2, A3, C1, "1층 A구역 B열 1번") == one
