"""The waiting room in front of an on-sale seat map: numbers in order of arrival, one per
customer, each let in at its slot, no way round it, and never a dead end when the cache
is down."""

import datetime as dt
import re
import threading

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from events.models import Performance
from events.tests.factories import UserFactory
from reservations import waiting_room
from reservations.models import Reservation
from reservations.tests.factories import seat_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def rush(performance):
    """Sales opened ten seconds ago; one customer a minute is let in."""
    Performance.objects.filter(pk=performance.pk).update(
        waiting_room_rate=1, sales_open_at=timezone.now() - dt.timedelta(seconds=10)
    )
    performance.refresh_from_db()
    return performance


def quicker(performance, count):
    """`count` other customers take their numbers first."""
    for _ in range(count):
        waiting_room.waiting_room_draw(performance=performance, user=UserFactory())


def clock(monkeypatch, at):
    monkeypatch.setattr(timezone, "now", lambda: at)


def waiting_url(performance):
    return f"{performance.get_absolute_url()}waiting/"


def status(client, performance):
    return client.get(waiting_url(performance), HTTP_ACCEPT="application/json").json()


def test_numbers_follow_arrival_and_each_is_let_in_at_its_slot(rush):
    now = timezone.now()
    tickets = [waiting_room.waiting_room_draw(performance=rush, user=UserFactory(), now=now) for _ in range(3)]

    assert [t.number for t in tickets] == [1, 2, 3]
    assert tickets[0].admit_at == now  # its slot (sales open) has passed: in at once
    opening = waiting_room.OPENING  # the rush's first second, for taking numbers
    assert tickets[1].admit_at == rush.sales_open_at + opening + dt.timedelta(minutes=1)
    assert tickets[2].admit_at == rush.sales_open_at + opening + dt.timedelta(minutes=2)
    # Number 1 is in; 2 is next, with nobody still waiting before it.
    assert [t.ahead(rush, now) for t in tickets] == [0, 0, 1]


def test_one_number_per_customer_whatever_the_browser(client, alice, rush):
    quicker(rush, 1)
    client.force_login(alice)
    first = status(client, rush)
    assert status(client, rush)["number"] == first["number"] == 2  # a reload keeps the place

    other_browser = Client()
    other_browser.force_login(alice)
    assert status(other_browser, rush)["number"] == 2  # a second browser: the same place
    assert waiting_room.waiting_room_draw(performance=rush, user=alice).number == 2
    assert waiting_room.waiting_room_draw(performance=rush, user=UserFactory()).number == 3


def test_the_ticket_cannot_be_changed_or_lent(client, alice, bob, rush):
    quicker(rush, 1)
    client.force_login(alice)
    assert status(client, rush)["number"] == 2
    cookie = client.cookies[f"line-{rush.pk}"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    mine = waiting_room.waiting_room_ticket(performance=rush, user=alice, cookies={cookie.key: cookie.value})
    assert mine.number == 2

    # Number 1's payload under Alice's signature: a forged ticket.
    first_in_line = waiting_room.Ticket(number=1, admit_at=timezone.now())
    forged = waiting_room.waiting_room_cookie(performance=rush, user=alice, ticket=first_in_line)["value"]
    client.cookies[cookie.key] = ":".join([forged.split(":")[0], *cookie.value.split(":")[1:]])
    assert client.get(rush.get_absolute_url()).status_code == 302  # not let in

    # Alice's real, admitted ticket in Bob's browser: not his.
    admitted = waiting_room.waiting_room_cookie(performance=rush, user=alice, ticket=first_in_line)
    bobs = Client()
    bobs.force_login(bob)
    bobs.cookies[admitted["key"]] = admitted["value"]
    assert waiting_room.waiting_room_ticket(performance=rush, user=alice, cookies={admitted["key"]: admitted["value"]})
    assert bobs.get(rush.get_absolute_url()).status_code == 302
    assert status(bobs, rush)["number"] == 3  # his own number, at the back


def test_a_sale_moved_to_another_opening_starts_a_new_line(alice, rush):
    quicker(rush, 1)
    ticket = waiting_room.waiting_room_draw(performance=rush, user=alice)
    cookie = waiting_room.waiting_room_cookie(performance=rush, user=alice, ticket=ticket)
    cookies = {cookie["key"]: cookie["value"]}
    assert waiting_room.waiting_room_ticket(performance=rush, user=alice, cookies=cookies) == ticket
    rush.sales_open_at -= dt.timedelta(minutes=5)

    assert waiting_room.waiting_room_ticket(performance=rush, user=alice, cookies=cookies) is None
    assert waiting_room.waiting_room_draw(performance=rush, user=alice).number == 1


def test_numbers_are_unique_when_many_arrive_at_once(rush):
    customers = [UserFactory() for _ in range(20)]
    numbers, errors = [], []

    def arrive(customer):
        try:
            numbers.append(waiting_room.waiting_room_draw(performance=rush, user=customer).number)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=arrive, args=(customer,)) for customer in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sorted(numbers) == list(range(1, 21))


def test_visitors_sign_in_before_taking_a_number(client, rush):
    response = client.get(rush.get_absolute_url())
    assert response["Location"] == waiting_url(rush)

    response = client.get(waiting_url(rush))

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert response["Location"].endswith(f"?next={waiting_url(rush)}")
    assert f"line-{rush.pk}" not in response.cookies
    assert waiting_room.waiting_room_draw(performance=rush, user=UserFactory()).number == 1  # none was taken


def test_the_seat_map_waits_its_turn_then_opens(client, alice, rush, monkeypatch):
    quicker(rush, 2)  # number 1 is in, number 2 waits a minute
    client.force_login(alice)
    url = rush.get_absolute_url()

    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == waiting_url(rush)
    page = client.get(waiting_url(rush))
    html = " ".join(page.content.decode().split())
    assert page.status_code == 200
    assert "Your number: 3" in html and "1 person ahead of you" in html and "about 2 minutes" in html
    waiting = status(client, rush)
    assert waiting["admitted"] is False and waiting["number"] == 3 and 60 < waiting["wait_seconds"] <= 111

    assert client.get(url).status_code == 302  # reloading the map does not help

    clock(monkeypatch, rush.sales_open_at + waiting_room.OPENING + dt.timedelta(minutes=2))
    assert status(client, rush) == {**waiting, "admitted": True, "ahead": 0, "wait_seconds": 0}
    assert client.get(waiting_url(rush))["Location"] == url
    assert client.get(url).status_code == 200


def test_holding_without_a_turn_is_refused_and_changes_nothing(client, alice, rush):
    quicker(rush, 1)
    client.force_login(alice)
    client.get(waiting_url(rush))  # number 2: a minute to wait
    [item] = seat_items(rush, "1층 A구역 A열 1번")
    hold_url = f"{rush.get_absolute_url()}hold/"
    form = {"token": "t1", "items": [item.pk]}

    as_script = client.post(hold_url, form, HTTP_ACCEPT="application/json")
    as_form = client.post(hold_url, {**form, "token": "t2"})

    assert as_script.status_code == 403
    assert as_script.json()["redirect"] == waiting_url(rush)
    assert as_form.status_code == 302 and as_form["Location"] == waiting_url(rush)
    assert not Reservation.objects.exists()
    item.refresh_from_db()
    assert item.status == "available"


def test_a_customer_whose_turn_came_holds_seats(client, alice, rush):
    client.force_login(alice)
    assert client.get(waiting_url(rush))["Location"] == rush.get_absolute_url()  # number 1
    [item] = seat_items(rush, "1층 A구역 A열 1번")

    response = client.post(f"{rush.get_absolute_url()}hold/", {"token": "t", "items": [item.pk]})

    reservation = Reservation.objects.get(user=alice)
    assert response["Location"] == reservation.get_absolute_url()


def test_staff_skip_the_line(client, rush):
    quicker(rush, 1)
    client.force_login(UserFactory(is_staff=True))
    assert client.get(rush.get_absolute_url()).status_code == 200


@pytest.mark.parametrize("change", ["no rate", "not on sale yet", "sales closed"])
def test_no_line_without_a_rate_or_outside_the_sale(client, rush, change):
    quicker(rush, 1)
    if change == "no rate":
        rush.waiting_room_rate = None
    elif change == "not on sale yet":
        rush.status = Performance.Status.SCHEDULED
    else:
        rush.status = Performance.Status.CLOSED
    rush.save()

    assert client.get(rush.get_absolute_url()).status_code == 200
    assert client.get(waiting_url(rush))["Location"] == rush.get_absolute_url()
    assert status(client, rush)["admitted"]


def test_customers_are_let_in_for_a_minute_when_the_line_cannot_be_kept(client, alice, rush, monkeypatch):
    quicker(rush, 1)
    client.force_login(alice)

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    for method in ("get", "incr", "add"):
        monkeypatch.setattr(cache, method, down)

    response = client.get(waiting_url(rush))

    assert response["Location"] == rush.get_absolute_url()
    assert response.cookies[f"line-{rush.pk}"]["max-age"] == 60  # not a pass for the whole sale
    assert client.get(rush.get_absolute_url()).status_code == 200


def test_the_waiting_room_of_an_unknown_or_hidden_performance_is_404(client, alice, rush):
    client.force_login(alice)
    url = waiting_url(rush)
    assert client.get(url.replace(f"/{rush.pk}/", f"/{rush.pk + 1000}/")).status_code == 404
    assert client.get(url.replace(rush.event.slug, "nope")).status_code == 404
    rush.event.status = rush.event.Status.DRAFT
    rush.event.save()
    assert client.get(url).status_code == 404


def test_the_korean_waiting_room(client, alice, rush, settings):
    settings.LANGUAGE_CODE = "ko"
    quicker(rush, 2)
    client.force_login(alice)

    html = client.get(waiting_url(rush), HTTP_ACCEPT_LANGUAGE="ko").content.decode()

    assert re.search(r"대기 번호\S*\s*3", html)
    assert "내 앞에 1명" in html
