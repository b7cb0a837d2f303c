import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from events.models import Performance, PriceGrade
from events.tests.factories import LayoutFactory, PerformanceFactory
from reservations.models import InventoryItem, Reservation
from reservations.tests.factories import hold, seat_items

pytestmark = pytest.mark.django_db

A1, A2, A3 = (f"1층 A구역 A열 {n}번" for n in range(1, 4))
C1 = "1층 A구역 C열 1번"


def hold_url(performance):
    return reverse("reservations:hold", args=[performance.event.slug, performance.pk])


def post_hold(client, performance, *labels, token="t-1", **extra):
    data = {"token": token, "items": [i.pk for i in seat_items(performance, *labels)], **extra}
    return client.post(hold_url(performance), data)


def test_visitors_are_sent_to_sign_in_and_back(client, performance):
    page = client.get(performance.get_absolute_url()).content.decode()
    assert "Sign in to book" in page
    assert 'role="checkbox"' not in page
    response = post_hold(client, performance, A1)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert response.url.endswith("?next=" + performance.get_absolute_url())
    assert not Reservation.objects.exists()


def test_signed_in_customers_get_a_selectable_map(client, alice, performance):
    client.force_login(alice)
    page = client.get(performance.get_absolute_url()).content.decode()
    assert page.count('role="checkbox"') == 15
    assert 'id="hold-form"' in page
    assert 'data-limit="4"' in page


def test_holding_seats_leads_to_checkout_with_countdown_and_breakdown(client, alice, performance):
    client.force_login(alice)
    response = post_hold(
        client, performance, A1, A2, **{"standing-" + str(performance.layout.sections.get(kind="standing").pk): 1}
    )
    reservation = Reservation.objects.get(user=alice)
    assert response.status_code == 302
    assert response.url == reservation.get_absolute_url()
    page = " ".join(client.get(response.url).content.decode().split())
    assert "Checkout" in page
    assert 'data-countdown="' in page
    assert A1 in page and A2 in page and "1층 스탠딩 (standing)" in page
    assert "R석 × 2</th><td>₩240,000" in page
    assert "ST석 × 1</th><td>₩80,000" in page
    assert "Booking fee (₩2,000 × 3)</th><td>₩6,000" in page
    assert "<strong>₩326,000</strong>" in page


def test_a_seat_taken_a_second_ago_is_named_and_the_map_redrawn(client, alice, bob, performance):
    hold(bob, performance, A2)
    client.force_login(alice)
    response = post_hold(client, performance, A1, A2)
    page = response.content.decode()
    assert response.status_code == 409
    assert f"this seat was just taken by someone else: {A2}" in page
    (a1, a2) = seat_items(performance, A1, A2)
    assert re.search(rf'class="seat taken[^"]*"[^>]*data-item="{a2.pk}"', page)
    assert re.search(rf'class="seat selected"[^>]*data-item="{a1.pk}"[^>]*aria-checked="true"', page)
    assert not Reservation.objects.filter(user=alice).exists()


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_standing_places_just_taken_are_a_conflict_with_the_count_left(client, alice, bob, performance, accept):
    zone = performance.layout.sections.get(kind="standing")  # capacity 4
    hold(bob, performance, standing=[(zone.pk, 3)])
    client.force_login(alice)
    response = client.post(
        hold_url(performance), {"token": "t-1", f"standing-{zone.pk}": 2, "items": []}, HTTP_ACCEPT=accept
    )
    assert response.status_code == 409
    if accept == "application/json":
        assert response.json() == {"error": "1층 스탠딩 has only 1 place left."}
    else:
        page = response.content.decode()
        assert "1층 스탠딩 has only 1 place left." in page
        assert 'id="hold-form"' in page  # the map drawn again, with the zone's count
    assert not Reservation.objects.filter(user=alice).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"items": ["abc"]}, "The seat selection was damaged"),
        ({"items": ["-3"]}, "The seat selection was damaged"),
        ({"items": ["0"]}, "The seat selection was damaged"),
        ({"items": [str(2**63)]}, "The seat selection was damaged"),  # past any id: a 500 once
        ({"items": ["99999999999999999999999"]}, "The seat selection was damaged"),
        ({"items": ["9" * 5000]}, "The seat selection was damaged"),  # int() refuses this many digits
        ({"items": ["١٢"]}, "The seat selection was damaged"),  # digits, but not ASCII ones
        ({"items": [" 12"]}, "The seat selection was damaged"),
        ({"items": [str(i) for i in range(1, 102)]}, "The seat selection was damaged"),  # 101 ids
        ({}, "Choose at least one seat"),
        ({"token": ""}, "The form was incomplete"),
    ],
)
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_tampered_or_empty_forms_change_nothing(client, alice, performance, data, message, accept):
    client.force_login(alice)
    response = client.post(hold_url(performance), {"token": "t", **data}, HTTP_ACCEPT=accept)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Reservation.objects.exists()


def test_duplicated_and_foreign_seat_ids_are_refused(client, alice, performance):
    client.force_login(alice)
    (a1,) = seat_items(performance, A1)
    response = client.post(hold_url(performance), {"token": "t", "items": [a1.pk, a1.pk]})
    assert response.status_code == 400 and "sent twice" in response.content.decode()
    other = PerformanceFactory(event=performance.event, layout=performance.layout)
    (foreign,) = seat_items(other, A1)
    response = client.post(hold_url(performance), {"token": "t", "items": [foreign.pk]})
    assert response.status_code == 400 and "not part of this performance" in response.content.decode()
    assert not Reservation.objects.exists()


def test_more_than_the_limit_is_refused(client, alice, performance):
    client.force_login(alice)
    zone = performance.layout.sections.get(kind="standing")
    response = client.post(hold_url(performance), {"token": "t", f"standing-{zone.pk}": 5})
    assert response.status_code == 400
    assert "less than or equal to 4" in response.content.decode()
    labels = [f"1층 A구역 B열 {n}번" for n in range(1, 6)]
    response = post_hold(client, performance, *labels)
    assert "at most 4 tickets" in response.content.decode()
    assert not Reservation.objects.exists()


def test_a_double_submitted_form_holds_once(client, alice, performance):
    client.force_login(alice)
    first = post_hold(client, performance, A1, token="same")
    second = post_hold(client, performance, A1, token="same")
    assert first.url == second.url
    assert Reservation.objects.count() == 1


def test_a_used_form_sent_again_for_other_seats_is_drawn_afresh(client, alice, performance):
    client.force_login(alice)
    first = post_hold(client, performance, A1, token="kept")
    response = post_hold(client, performance, A2, token="kept")
    page = response.content.decode()
    booking = Reservation.objects.get()
    assert response.status_code == 400
    assert f"This form was already sent, and made booking {booking.code}." in page
    assert first.url == booking.get_absolute_url()
    assert 'name="token" value="kept"' not in page and 'name="token" value="' in page  # a new form
    assert InventoryItem.objects.filter(performance=performance, status="held").count() == 1


def test_closed_sales_are_explained(client, alice, performance):
    Performance.objects.filter(pk=performance.pk).update(status=Performance.Status.CLOSED)
    client.force_login(alice)
    page = client.get(performance.get_absolute_url()).content.decode()
    assert 'id="hold-form"' not in page
    response = post_hold(client, performance, A1)
    assert response.status_code == 400
    assert "Sales for this performance have closed." in response.content.decode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sales_open_at": timezone.now() + dt.timedelta(days=1)}, "Sales for this performance have not opened yet."),
        ({"status": Performance.Status.CANCELLED}, "This performance has been cancelled."),
        (
            {
                "starts_at": timezone.now() - dt.timedelta(minutes=1),
                "sales_close_at": timezone.now() - dt.timedelta(minutes=2),
                "sales_open_at": timezone.now() - dt.timedelta(days=2),
            },
            "This performance has already started.",
        ),
    ],
)
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_holds_outside_the_sale_are_explained_and_change_nothing(client, alice, performance, change, message, accept):
    Performance.objects.filter(pk=performance.pk).update(**change)
    client.force_login(alice)
    (a1,) = seat_items(performance, A1)
    response = client.post(hold_url(performance), {"token": "t", "items": [a1.pk]}, HTTP_ACCEPT=accept)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Reservation.objects.exists()
    assert not InventoryItem.objects.exclude(status="available").exists()


def test_best_available(client, alice, performance):
    client.force_login(alice)
    grade = PriceGrade.objects.get(event=performance.event, code="R")
    response = client.post(hold_url(performance), {"mode": "best", "token": "b", "grade": grade.pk, "quantity": 2})
    reservation = Reservation.objects.get(user=alice)
    assert response.url == reservation.get_absolute_url()
    assert [line.grade_code for line in reservation.lines.all()] == ["R", "R"]
    response = client.post(hold_url(performance), {"mode": "best", "token": "c", "grade": grade.pk, "quantity": 9})
    assert response.status_code == 400 and "at most 4 seats" in response.content.decode()


def test_checkout_is_the_owners_only(client, alice, bob, performance):
    reservation = hold(alice, performance, A1)
    url = reservation.get_absolute_url()
    response = client.get(url)  # anonymous: to sign in, and back
    assert response.status_code == 302 and response.url == f"{reverse('account_login')}?next={url}"
    client.force_login(bob)
    assert client.get(url).status_code == 404
    client.force_login(alice)
    assert client.get(url).status_code == 200


def test_release_is_the_owners_only(client, alice, bob, performance):
    reservation = hold(alice, performance, A1)
    url = reverse("reservations:release", args=[reservation.code])
    response = client.post(url)
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
    reservation.refresh_from_db()
    assert reservation.status == "held"
    client.force_login(bob)
    assert client.post(url).status_code == 404
    client.force_login(alice)
    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    assert "Your seats have been released." in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.status == "released"
    assert InventoryItem.objects.get(performance=performance, seat__label=A1).status == "available"


def test_releasing_an_expired_hold_says_it_had_expired(client, alice, performance):
    reservation = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(hours=1))
    client.force_login(alice)
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert "This hold expired" in page
    response = client.post(reverse("reservations:release", args=[reservation.code]), follow=True)
    assert "already expired" in response.content.decode()


def test_changing_seats_from_checkout(client, alice, performance):
    reservation = hold(alice, performance, A1)
    client.force_login(alice)
    page = client.get(performance.get_absolute_url() + f"?change={reservation.code}").content.decode()
    (a1,) = seat_items(performance, A1)
    assert re.search(rf'class="seat selected"[^>]*data-item="{a1.pk}"', page)
    assert "Change to these seats" in page
    response = post_hold(client, performance, A2, A3, token="new", change=reservation.code)
    reservation.refresh_from_db()
    assert reservation.status == "released"
    new = Reservation.objects.get(user=alice, status="held")
    assert response.url == new.get_absolute_url()
    assert sorted(line.label for line in new.lines.all()) == [A2, A3]
    # The old hold is not a booking of its own: not listed, and its page points to the new one.
    listing = client.get(reverse("reservations:list")).content.decode()
    assert new.code in listing and reservation.code not in listing
    old_page = client.get(reservation.get_absolute_url()).content.decode()
    assert "You changed these seats for others" in old_page


def test_a_released_hold_says_so_and_offers_the_seat_map_again(client, alice, performance):
    reservation = hold(alice, performance, A1)
    client.force_login(alice)
    client.post(reverse("reservations:release", args=[reservation.code]))
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert "These seats were released, and nothing was paid for them." in page
    assert f'href="{performance.get_absolute_url()}"' in page
    assert reservation.code in client.get(reverse("reservations:list")).content.decode()  # released: still listed


def test_someone_elses_booking_cannot_be_changed(client, alice, bob, performance):
    bobs = hold(bob, performance, A1)
    client.force_login(alice)
    page = client.get(performance.get_absolute_url() + f"?change={bobs.code}").content.decode()
    assert "You are changing the seats" not in page
    response = post_hold(client, performance, A2, change=bobs.code)
    assert response.status_code == 400 and "cannot be changed here" in response.content.decode()
    bobs.refresh_from_db()
    assert bobs.status == "held"


def test_my_bookings_lists_mine_only(client, alice, bob, performance):
    mine = hold(alice, performance, A1)
    theirs = hold(bob, performance, A2)
    expired = hold(alice, performance, A3, now=timezone.now() - dt.timedelta(hours=1))
    client.force_login(alice)
    page = client.get(reverse("reservations:list")).content.decode()
    upcoming, past = page.split('id="past-title"')
    assert mine.code in upcoming
    assert expired.code in past and "Expired" in past
    assert theirs.code not in page
    client.logout()
    assert client.get(reverse("reservations:list")).status_code == 302


def test_my_bookings_shows_seats_and_the_countdown_and_pages_the_rest(client, alice, performance):
    then = timezone.now() - dt.timedelta(hours=6)
    ended = [hold(alice, performance, A2, now=then + dt.timedelta(minutes=11 * i)) for i in range(25)]
    live = hold(alice, performance, A1, A3)  # made last, yet listed first and in full
    client.force_login(alice)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("reservations:list")).content.decode()
    upcoming, past = page.split('id="past-title"')
    assert live.code in upcoming and f"{A1}, {A3}" in upcoming
    assert 'data-countdown="' in upcoming and "js/countdown.js" in page
    assert sum(r.code in past for r in ended) == 20 and "Page 1 of 2" in past
    second = client.get(reverse("reservations:list"), {"page": 2}).content.decode()
    assert sum(r.code in second for r in ended) == 5 and live.code in second.split('id="past-title"')[0]
    assert client.get(reverse("reservations:list"), {"page": "x"}).status_code == 200
    # Rows and their seats in a fixed number of queries, however many bookings.
    hold(alice, performance, "1층 A구역 B열 1번")
    with CaptureQueriesContext(connection) as more:
        client.get(reverse("reservations:list"))
    assert len(more) == len(queries)


def test_seat_map_queries_stay_constant_for_customers(client, alice, performance):
    client.force_login(alice)
    with CaptureQueriesContext(connection) as small:
        client.get(performance.get_absolute_url())
    big = PerformanceFactory(
        event=performance.event,
        layout=performance.layout,
    )
    hold(alice, big, A1)
    with CaptureQueriesContext(connection) as again:
        client.get(big.get_absolute_url())
    assert len(again.captured_queries) == len(small.captured_queries)


def test_the_map_script_gets_short_json_answers(client, alice, bob, performance):
    hold(bob, performance, A2)
    hold(bob, performance, C1)  # taken since alice's map was drawn
    expired = hold(bob, performance, A3)
    Reservation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    InventoryItem.objects.filter(reservation=expired).update(held_until=timezone.now() - dt.timedelta(seconds=1))
    client.force_login(alice)
    a1, a2 = seat_items(performance, A1, A2)
    (c1,) = seat_items(performance, C1)
    ask = {"HTTP_ACCEPT": "application/json"}
    taken = client.post(hold_url(performance), {"token": "j1", "items": [a1.pk, a2.pk]}, **ask)
    assert taken.status_code == 409
    answer = taken.json()
    assert answer["taken"] == [a2.pk]
    # Everything gone now, for the map to grey out; an expired hold's seat is free again.
    assert sorted(answer["unavailable"]) == sorted([a2.pk, c1.pk])
    assert set(answer) == {"error", "taken", "unavailable"}
    assert A2 in answer["error"]
    bad = client.post(hold_url(performance), {"token": "j2", "items": ["x"]}, **ask)
    assert bad.status_code == 400 and "damaged" in bad.json()["error"]
    done = client.post(hold_url(performance), {"token": "j3", "items": [a1.pk]}, **ask)
    assert done.status_code == 200
    assert done.json()["redirect"] == Reservation.objects.get(user=alice).get_absolute_url()


def test_a_booking_that_is_no_longer_a_hold_keeps_its_seats_greyed_out(client, alice, bob, performance):
    bought = hold(alice, performance, A1)
    Reservation.objects.filter(pk=bought.pk).update(status="confirmed")
    InventoryItem.objects.filter(reservation=bought).update(status="sold", held_until=None)
    hold(bob, performance, A2)
    client.force_login(alice)
    a1, a2 = seat_items(performance, A1, A2)
    answer = client.post(
        hold_url(performance), {"token": "c2", "items": [a2.pk], "change": bought.code}, HTTP_ACCEPT="application/json"
    )
    assert answer.status_code == 409
    assert sorted(answer.json()["unavailable"]) == sorted([a1.pk, a2.pk])


def test_changing_seats_the_json_answer_keeps_the_customers_own_seats_selectable(client, alice, bob, performance):
    mine = hold(alice, performance, A1)
    hold(bob, performance, A2)
    client.force_login(alice)
    a1, a2 = seat_items(performance, A1, A2)
    answer = client.post(
        hold_url(performance),
        {"token": "c1", "items": [a1.pk, a2.pk], "change": mine.code},
        HTTP_ACCEPT="application/json",
    )
    assert answer.status_code == 409
    assert answer.json()["taken"] == [a2.pk]
    assert answer.json()["unavailable"] == [a2.pk]  # A1 is still alice's to keep
    mine.refresh_from_db()
    assert mine.status == "held" and [line.label for line in mine.lines.all()] == [A1]


def test_releasing_twice_says_the_seats_were_already_released(client, alice, performance):
    reservation = hold(alice, performance, A1)
    url = reverse("reservations:release", args=[reservation.code])
    client.force_login(alice)
    client.post(url)
    response = client.post(url, follow=True)  # the same form, from another tab
    assert "These seats were already released." in response.content.decode()
    assert list(reservation.transitions.values_list("to_status", flat=True)) == ["held", "released"]


def test_releasing_a_paid_booking_says_to_cancel_it(client, alice, performance):
    from reservations.services import reservation_confirm

    reservation = reservation_confirm(reservation=hold(alice, performance, A1))
    client.force_login(alice)
    response = client.post(reverse("reservations:release", args=[reservation.code]), follow=True)
    assert "cancel the booking instead" in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"
    assert InventoryItem.objects.get(performance=performance, seat__label=A1).status == "sold"


def test_changing_seats_keeps_the_hold_s_clock(client, alice, performance):
    started = timezone.now() - dt.timedelta(minutes=9)
    first = hold(alice, performance, A1, now=started)
    client.force_login(alice)
    page = client.get(performance.get_absolute_url() + f"?change={first.code}").content.decode()
    assert "Changing does not restart the clock" in page
    # Changed to the same seat (or any other) a minute before the end: still that end.
    response = post_hold(client, performance, A1, token="t-change", change=first.code)
    assert response.status_code == 302
    changed = Reservation.objects.get(user=alice, status="held")
    assert changed.pk != first.pk
    assert changed.expires_at == first.expires_at


def test_changing_an_expired_hold_is_refused(client, alice, performance):
    old = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(hours=1))
    client.force_login(alice)
    response = post_hold(client, performance, A2, token="t-late", change=old.code)
    assert response.status_code == 400
    assert "Your previous hold has ended" in response.content.decode()
    assert not Reservation.objects.filter(user=alice, status="held", expires_at__gt=timezone.now()).exists()
    assert InventoryItem.objects.get(performance=performance, seat__label=A2).status == "available"


def test_a_zone_of_another_performance_is_refused_not_dropped(client, alice, performance):
    elsewhere = LayoutFactory(spec='standing "스탠딩" floor=1층 x=0 y=0 w=200 h=80 capacity=50 grade=ST')
    foreign = elsewhere.sections.get(kind="standing")
    client.force_login(alice)
    response = post_hold(client, performance, A1, **{f"standing-{foreign.pk}": 2})
    assert response.status_code == 400
    assert "The seat selection was damaged" in response.content.decode()
    assert not Reservation.objects.exists()
    # The same by the map's script: a JSON answer naming the problem.
    data = {"token": "t-2", "items": [i.pk for i in seat_items(performance, A1)], f"standing-{foreign.pk}": 1}
    response = client.post(hold_url(performance), data, headers={"accept": "application/json"})
    assert response.status_code == 400 and "damaged" in response.json()["error"]
    assert not Reservation.objects.exists()


def test_a_field_sent_twice_is_refused(client, alice, performance):
    client.force_login(alice)
    (a1,) = seat_items(performance, A1)
    response = client.post(hold_url(performance), {"token": ["t-1", "t-2"], "items": [a1.pk]})
    assert response.status_code == 400 and "The seat selection was damaged" in response.content.decode()
    zone = performance.layout.sections.get(kind="standing")
    response = client.post(hold_url(performance), {"token": "t-3", f"standing-{zone.pk}": ["1", "3"]})
    assert response.status_code == 400 and "The seat selection was damaged" in response.content.decode()
    assert not Reservation.objects.exists()


def test_best_available_refuses_another_event_s_grade_and_zero_seats(client, alice, performance):
    other_grade = PerformanceFactory().event.grades.first()
    client.force_login(alice)
    for grade, quantity in ((other_grade.pk, 2), (performance.event.grades.first().pk, 0)):
        data = {"mode": "best", "token": f"b-{grade}-{quantity}", "grade": grade, "quantity": quantity}
        response = client.post(hold_url(performance), data)
        assert response.status_code == 400
        assert "Please correct the errors below." in response.content.decode()
    assert not Reservation.objects.exists()


def test_a_standing_quantity_sent_twice_is_refused_even_if_the_last_is_zero(client, alice, performance):
    client.force_login(alice)
    zone = performance.layout.sections.get(kind="standing")
    (a1,) = seat_items(performance, A1)
    response = client.post(hold_url(performance), {"token": "t-1", "items": [a1.pk], f"standing-{zone.pk}": ["2", "0"]})
    assert response.status_code == 400 and "The seat selection was damaged" in response.content.decode()
    assert not Reservation.objects.exists()


def test_changing_a_standing_hold_starts_from_the_places_held(client, alice, performance):
    zone = performance.layout.sections.get(kind="standing")
    first = hold(alice, performance, A1, standing=[(zone.pk, 2)])
    client.force_login(alice)
    page = client.get(performance.get_absolute_url() + f"?change={first.code}").content.decode()
    field = re.search(rf'<input[^>]*name="standing-{zone.pk}"[^>]*>', page).group(0)
    assert 'value="2"' in field
    # Sent as drawn, the change keeps the two places (and the seat): it does not drop to one.
    (a1,) = seat_items(performance, A1)
    response = client.post(
        hold_url(performance), {"token": "t-keep", "items": [a1.pk], f"standing-{zone.pk}": 2, "change": first.code}
    )
    assert response.status_code == 302
    changed = Reservation.objects.get(user=alice, status="held")
    assert changed.lines.count() == 3


@pytest.mark.parametrize(("days_away", "said"), [(30, "Cancelling after paying today is free."), (5, "₩48,000")])
def test_checkout_says_when_cancelling_closes_and_what_it_costs_today(client, alice, performance, days_away, said):
    now = timezone.now()
    Performance.objects.filter(pk=performance.pk).update(
        starts_at=now + dt.timedelta(days=days_away), sales_close_at=now + dt.timedelta(days=days_away - 1)
    )
    reservation = hold(alice, performance, A1, A2)
    client.force_login(alice)
    page = " ".join(client.get(reservation.get_absolute_url()).content.decode().split())
    box = page.split('id="policy-now"')[1].split("</p>")[0]
    day_before = timezone.localtime(now + dt.timedelta(days=days_away - 1)).strftime("%Y.%m.%d")
    assert "Cancellation deadline" in box and f"{day_before} " in box and "17:00" in box
    assert said in box  # 5 days before: 20 % of two R seats (₩240,000)
