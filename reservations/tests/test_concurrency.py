"""Many buyers, the same seats, at the same instant: exactly one winner per place.

Each thread has its own database connection (Django's are per thread), so these are
real concurrent transactions on MariaDB (row locks, READ COMMITTED) and real queued
writers on SQLite. A canary runs the naive read-check-write version of a hold under
the same harness and must oversell, proving the harness can catch a race.
"""

import datetime as dt
import threading
import uuid

import pytest
import requests
from django.db import connection, connections, transaction
from django.utils import timezone

from events.models import Event
from events.tests.factories import UserFactory, session_key_for
from reservations.models import InventoryItem, Reservation
from reservations.services import ReservationError, ZoneShort
from reservations.tests.factories import hold_items, seat_items
from ticketing.testing import race

pytestmark = pytest.mark.django_db(transaction=True)

A1, A2, A3 = (f"1층 A구역 A열 {n}번" for n in range(1, 4))
THREADS = 12


def live_reservations_per_item(performance) -> dict[int, list[str]]:
    """item id -> codes of live reservations whose lines include it."""
    holders: dict[int, list[str]] = {}
    now = timezone.now()
    for reservation in Reservation.objects.filter(performance=performance).prefetch_related("lines"):
        live = reservation.status == "confirmed" or (
            reservation.status in ("held", "pending_payment") and reservation.expires_at > now
        )
        if live:
            for line in reservation.lines.all():
                holders.setdefault(line.item_id, []).append(reservation.code)
    return holders


def assert_no_place_sold_twice(performance):
    for item_id, codes in live_reservations_per_item(performance).items():
        assert len(codes) == 1, f"item {item_id} is in {codes}"
        item = InventoryItem.objects.get(pk=item_id)
        assert item.reservation.code == codes[0]
        assert item.status in ("held", "sold")


def test_one_winner_when_everyone_wants_the_same_seats(performance):
    users = [UserFactory() for _ in range(THREADS)]
    ids = tuple(item.pk for item in seat_items(performance, A1, A2))

    def buy(i):
        return hold_items(users[i], performance, *ids)

    results = race(buy, THREADS)
    winners = [r for r in results if isinstance(r, Reservation)]
    losers = [r for r in results if isinstance(r, ReservationError)]
    assert len(winners) == 1, results
    assert len(losers) == THREADS - 1, [r for r in results if not isinstance(r, (Reservation, ReservationError))]
    assert all("just taken" in loser.message for loser in losers)
    assert set(InventoryItem.objects.filter(pk__in=ids).values_list("reservation", flat=True)) == {winners[0].pk}
    assert_no_place_sold_twice(performance)


def test_overlapping_choices_never_share_a_seat(performance):
    users = [UserFactory() for _ in range(THREADS)]
    row = seat_items(performance, *(f"1층 A구역 {r}열 {n}번" for r in "AB" for n in range(1, 6)))

    def buy(i):
        return hold_items(users[i], performance, row[i % len(row)].pk, row[(i + 1) % len(row)].pk)

    results = race(buy, THREADS)
    unexpected = [r for r in results if not isinstance(r, (Reservation, ReservationError))]
    assert not unexpected
    winners = [r for r in results if isinstance(r, Reservation)]
    assert winners
    assert_no_place_sold_twice(performance)
    held = InventoryItem.objects.filter(performance=performance, status="held").count()
    assert held == 2 * len(winners)


def test_the_last_standing_places_go_to_exactly_as_many_buyers(performance):
    zone = performance.layout.sections.get(kind="standing")  # capacity 4
    users = [UserFactory() for _ in range(10)]

    def buy(i):
        return hold_items(users[i], performance, standing=[(zone.pk, 1)])

    results = race(buy, 10)
    winners = [r for r in results if isinstance(r, Reservation)]
    assert len(winners) == 4
    assert all(isinstance(r, ReservationError) for r in results if r not in winners)
    assert InventoryItem.objects.filter(section=zone, performance=performance, status="held").count() == 4
    assert_no_place_sold_twice(performance)


@pytest.mark.parametrize("first_buyer_has", ["picked", "claimed"])
def test_a_buyer_racing_for_the_last_places_waits_for_the_answer(performance, first_buyer_has):
    """The last places are in another buyer's open transaction: picked (locked, not yet
    updated) or claimed (updated, not yet committed). Read without a lock they still
    look free, and the other buyer may yet give them up, so the second buyer waits for
    the first and is then told the truth: a place (the first let them go) or sold out,
    never "only 4 places left" to someone who asked for one."""
    zone = performance.layout.sections.get(kind="standing")  # capacity 4
    holding, finish = threading.Event(), threading.Event()
    outcome = {}

    def first_buyer():
        try:
            with transaction.atomic():
                if first_buyer_has == "picked":
                    places = InventoryItem.objects.filter(performance=performance, section=zone).select_for_update()
                    outcome["first"] = len(places)
                else:
                    outcome["first"] = hold_items(UserFactory(), performance, standing=[(zone.pk, 4)])
                holding.set()
                finish.wait(30)
        finally:
            connections.close_all()

    def second_buyer():
        try:
            outcome["second"] = hold_items(UserFactory(), performance, standing=[(zone.pk, 1)])
        except ReservationError as exc:
            outcome["second"] = exc
        finally:
            connections.close_all()

    first = threading.Thread(target=first_buyer)
    first.start()
    assert holding.wait(30)
    second = threading.Thread(target=second_buyer)
    second.start()
    second.join(0.5)
    waited = second.is_alive()
    finish.set()
    first.join(30)
    second.join(30)
    answer = outcome["second"]
    if first_buyer_has == "picked":
        assert isinstance(answer, Reservation), answer  # the first buyer took nothing after all
    else:
        assert isinstance(outcome["first"], Reservation)
        assert isinstance(answer, ZoneShort) and answer.message == "1층 스탠딩 is sold out.", answer
    if connection.vendor == "mysql" or first_buyer_has == "claimed":
        assert waited  # SQLite's reads lock nothing: a buyer who only picked holds up no one
    assert InventoryItem.objects.filter(section=zone, performance=performance, status="held").count() == (
        1 if first_buyer_has == "picked" else 4
    )


def test_one_customer_in_many_tabs_cannot_pass_the_limit(performance):
    Event.objects.filter(pk=performance.event_id).update(ticket_limit=3)
    performance.event.refresh_from_db()
    customer = UserFactory()
    items = seat_items(performance, *(f"1층 A구역 {r}열 {n}번" for r in "AB" for n in range(1, 4)))

    def buy(i):
        return hold_items(customer, performance, items[i].pk)

    results = race(buy, len(items))
    assert sum(isinstance(r, Reservation) for r in results) == 3
    errors = [r for r in results if not isinstance(r, Reservation)]
    assert all(isinstance(e, ReservationError) and "at most 3 tickets" in e.message for e in errors), errors


def test_the_same_form_submitted_from_many_threads_holds_once(performance):
    customer = UserFactory()
    ids = tuple(item.pk for item in seat_items(performance, A1, A2))

    def submit(_i):
        return hold_items(customer, performance, *ids, request_token="one-form")

    results = race(submit, 6)
    assert all(isinstance(r, Reservation) for r in results), results
    assert {r.pk for r in results} == {Reservation.objects.get(user=customer).pk}
    assert_no_place_sold_twice(performance)


def test_canary_read_check_write_oversells_under_the_same_harness(performance):
    """Without the conditional UPDATE, everyone sees the seat free and everyone "wins"."""
    users = [UserFactory() for _ in range(THREADS)]
    (seat,) = seat_items(performance, A1)
    barrier = threading.Barrier(THREADS, timeout=30)

    def naive_buy(i):
        free = InventoryItem.objects.filter(pk=seat.pk, status="available").exists()  # read
        barrier.wait()  # everyone has read before anyone writes
        if not free:  # check
            return None
        until = timezone.now() + dt.timedelta(minutes=10)
        reservation = Reservation.objects.create(
            user=users[i], performance=performance, request_token=uuid.uuid4().hex, expires_at=until
        )
        InventoryItem.objects.filter(pk=seat.pk).update(status="held", held_until=until, reservation=reservation)
        return reservation

    results = race(naive_buy, THREADS)
    assert not [r for r in results if isinstance(r, Exception)], results
    believers = [r for r in results if isinstance(r, Reservation)]
    assert len(believers) > 1, "the harness failed to produce a race; the tests above would prove nothing"


@pytest.fixture
def http_buyers(live_server, performance):
    """Signed-in browsers (real HTTP sessions with CSRF tokens) for the live server."""
    from django.conf import settings

    sessions = []
    for _ in range(THREADS):
        browser = requests.Session()
        browser.cookies.set(settings.SESSION_COOKIE_NAME, session_key_for(UserFactory()))
        page = browser.get(live_server.url + performance.get_absolute_url(), timeout=30)
        assert page.status_code == 200
        token = page.text.split('name="token" value="')[1].split('"')[0]
        sessions.append((browser, token))
    return sessions


def test_real_http_requests_race_for_the_same_seats(live_server, performance, http_buyers):
    ids = [item.pk for item in seat_items(performance, A2, A3)]
    url = live_server.url + f"/events/{performance.event.slug}/performances/{performance.pk}/hold/"

    def buy(i):
        browser, token = http_buyers[i]
        response = browser.post(
            url,
            data={"token": token, "items": ids, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": live_server.url},
            allow_redirects=False,
            timeout=60,
        )
        return response.status_code, response.headers.get("Location", ""), response.text

    results = race(buy, THREADS)
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [302] + [409] * (THREADS - 1), statuses
    assert all("just taken" in body for status, _, body in results if status == 409)
    (winner,) = [location for status, location, _ in results if status == 302]
    reservation = Reservation.objects.get()
    assert winner.endswith(reservation.get_absolute_url())
    assert_no_place_sold_twice(performance)
    assert connection.vendor in ("mysql", "sqlite")


def test_real_http_requests_race_for_the_last_standing_places(live_server, performance, http_buyers):
    zone = performance.layout.sections.get(kind="standing")  # capacity 4
    url = live_server.url + f"/events/{performance.event.slug}/performances/{performance.pk}/hold/"

    def buy(i):
        browser, token = http_buyers[i]
        response = browser.post(
            url,
            data={"token": token, f"standing-{zone.pk}": "1", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": live_server.url},
            allow_redirects=False,
            timeout=60,
        )
        return response.status_code, response.text

    results = race(buy, THREADS)
    statuses = sorted(status for status, _ in results)
    assert statuses == [302] * 4 + [409] * (THREADS - 4), statuses
    # Each refusal says why in words: a buyer waits for the ones ahead, so sold out.
    refusals = [body for status, body in results if status == 409]
    assert all("1층 스탠딩 is sold out." in body for body in refusals)
    winners = Reservation.objects.filter(performance=performance, status="held")
    assert winners.count() == 4
    assert all(r.lines.count() == 1 for r in winners)
    held = InventoryItem.objects.filter(section=zone, performance=performance, status="held")
    assert set(held.values_list("reservation", flat=True)) == set(winners.values_list("pk", flat=True))
    assert_no_place_sold_twice(performance)


def test_canary_the_real_service_oversells_once_its_condition_is_removed(performance, monkeypatch, request):
    """The same race as the first test, with the service's WHERE clause neutered."""
    from reservations import hold_sql

    # "Free" now means anything (still one parameter, so the statements run as before).
    monkeypatch.setattr(hold_sql, "FREE_SQL", "(%s IS NOT NULL)")
    hold_sql.forget_statements()  # the statements are made once; make them with this FREE_SQL
    request.addfinalizer(hold_sql.forget_statements)  # and with the real one after the test
    users = [UserFactory() for _ in range(THREADS)]
    ids = tuple(item.pk for item in seat_items(performance, A1, A2))

    def buy(i):
        return hold_items(users[i], performance, *ids)

    results = race(buy, THREADS)
    assert sum(isinstance(r, Reservation) for r in results) > 1, results
    with pytest.raises(AssertionError):
        assert_no_place_sold_twice(performance)
