import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from events.tests.factories import UserFactory
from reservations.models import InventoryItem, Reservation
from reservations.services import ReservationError, reservation_confirm
from reservations.tests.factories import hold, seat_items

pytestmark = pytest.mark.django_db

A1, A2, A3 = (f"1층 A구역 A열 {n}번" for n in range(1, 4))


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def seats_url(performance):
    return reverse("admin:events_performance_seats", args=[performance.pk])


def test_seat_view_shows_who_holds_what(staff, performance):
    alice = UserFactory(email="alice@example.com")
    held = hold(alice, performance, A1)
    sold = reservation_confirm(reservation=hold(UserFactory(email="bob@example.com"), performance, A2))
    hold(UserFactory(email="late@example.com"), performance, A3, now=timezone.now() - dt.timedelta(hours=1))
    page = staff.get(seats_url(performance)).content.decode()
    assert f"{A1} · R석 ₩120,000 · held · {held.code} · alice@example.com" in page
    assert f"{A2} · R석 ₩120,000 · sold · {sold.code} · bob@example.com" in page
    assert f"{A3} · R석 ₩120,000 · free" in page  # expired hold
    assert "late@example.com" not in page
    assert "Free 17 · held 1 · sold 1 · blocked 0" in page


def test_staff_block_and_unblock_free_seats_only(staff, performance):
    hold(UserFactory(), performance, A2)
    a1, a2 = seat_items(performance, A1, A2)
    response = staff.post(seats_url(performance), {"block": "1", "items": [a1.pk, a2.pk]}, follow=True)
    page = response.content.decode()
    assert "Blocked 1 of 2 places." in page
    assert f"Held or sold, so left alone: {A2}." in page  # named, not only counted
    assert InventoryItem.objects.get(pk=a1.pk).status == "blocked"
    assert InventoryItem.objects.get(pk=a2.pk).status == "held"
    again = staff.post(seats_url(performance), {"block": "1", "items": [a1.pk]}, follow=True).content.decode()
    assert "Blocked 0 of 1 place." in again and f"Already blocked: {A1}." in again
    assert "Held or sold" not in again  # an already-blocked seat is not called taken
    staff.post(seats_url(performance), {"unblock": "1", "items": [a1.pk]})
    assert InventoryItem.objects.get(pk=a1.pk).status == "available"
    page = staff.post(seats_url(performance), {"unblock": "1", "items": [a1.pk]}, follow=True).content.decode()
    assert f"Not blocked, so nothing to put back: {A1}." in page


def test_blocking_is_recorded_with_who_which_seats_and_why(client, performance):
    from django.contrib.admin.models import LogEntry

    manager = UserFactory(email="box-office@example.com", is_staff=True, is_superuser=True)
    client.force_login(manager)
    hold(UserFactory(), performance, A3)  # a customer's: chosen too, but not blocked
    a1, a2, a3 = seat_items(performance, A1, A2, A3)
    data = {"block": "1", "items": [a1.pk, a2.pk, a3.pk], "reason": "house seats for the cast"}
    client.post(seats_url(performance), data)
    (entry,) = LogEntry.objects.filter(object_id=str(performance.pk))
    assert entry.user == manager
    assert entry.get_change_message() == (f"Blocked 2 of 3 places. Seats: {A1}, {A2}. Reason: house seats for the cast")
    zone = performance.layout.sections.get(kind="standing")
    client.post(seats_url(performance), {"block_standing": "1", "zone": zone.pk, "quantity": 1, "reason": "camera"})
    client.post(seats_url(performance), {"unblock": "1", "items": [a2.pk, a3.pk]})  # A3 was never blocked
    page = client.get(seats_url(performance)).content.decode()
    history = page[page.index('id="performance-history"') :].split("</table>")[0]
    assert "1층 스탠딩: Blocked 1 of 1 standing places; held or sold ones were skipped. Reason: camera" in history
    assert f"Put 1 place back on sale. Seats: {A2}." in history
    assert history.count("box-office@example.com") == 3
    # Nothing blocked (the seat is taken): nothing recorded.
    client.post(seats_url(performance), {"block": "1", "items": [a3.pk], "reason": "broken"})
    assert LogEntry.objects.filter(object_id=str(performance.pk)).count() == 3


def test_staff_block_and_unblock_a_number_of_standing_places(staff, performance):
    zone = performance.layout.sections.get(kind="standing")  # capacity 4
    hold(UserFactory(), performance, standing=[(zone.pk, 1)])
    places = InventoryItem.objects.filter(performance=performance, section=zone)
    page = staff.get(seats_url(performance)).content.decode()
    assert "<td>1층 스탠딩</td><td>3</td><td>1</td><td>0</td><td>0</td>" in page

    response = staff.post(seats_url(performance), {"block_standing": "1", "zone": zone.pk, "quantity": 5}, follow=True)
    page = response.content.decode()
    assert "Blocked 3 of 5 standing places; held or sold ones were skipped." in page
    assert "<td>1층 스탠딩</td><td>0</td><td>1</td><td>0</td><td>3</td>" in page
    assert places.filter(status="held").count() == 1  # the customer's place is theirs still
    with pytest.raises(ReservationError, match="sold out"):
        hold(UserFactory(), performance, standing=[(zone.pk, 1)])

    response = staff.post(
        seats_url(performance), {"unblock_standing": "1", "zone": zone.pk, "quantity": 2}, follow=True
    )
    assert "Put 2 standing places back on sale." in response.content.decode()
    assert places.filter(status="blocked").count() == 1
    assert places.filter(status="available").count() == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"zone": "other layout", "quantity": 1}, "not part of this performance"),
        ({"zone": "seated", "quantity": 1}, "not part of this performance"),
        ({"zone": "x", "quantity": 1}, "not part of this performance"),
        ({"zone": "9" * 5000, "quantity": 1}, "not part of this performance"),
        ({"zone": "own", "quantity": 0}, "greater than or equal to 1"),
        ({"zone": "own", "quantity": "many"}, "Enter a whole number"),
        ({"zone": "own"}, "This field is required"),
    ],
)
def test_staff_standing_block_with_bad_input_changes_nothing(staff, performance, data, message):
    from events.tests.factories import PerformanceFactory

    zone = performance.layout.sections.get(kind="standing")
    elsewhere = PerformanceFactory().layout.sections.first()
    seated = performance.layout.sections.exclude(kind="standing").first()
    zones = {"own": zone.pk, "other layout": elsewhere.pk, "seated": seated.pk}
    data = {**data, "zone": zones.get(data["zone"], data["zone"])}
    response = staff.post(seats_url(performance), {"block_standing": "1", **data}, follow=True)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not InventoryItem.objects.filter(status="blocked").exists()


@pytest.mark.parametrize("value", [str(2**63), "99999999999999999999999", "9" * 5000, "²", "x"])
def test_staff_block_with_a_damaged_seat_list_changes_nothing(staff, performance, value):
    (a1,) = seat_items(performance, A1)
    response = staff.post(seats_url(performance), {"block": "1", "items": [a1.pk, value]}, follow=True)
    assert response.status_code == 200
    assert "The seat selection was damaged" in response.content.decode()
    assert not InventoryItem.objects.filter(status="blocked").exists()


def test_seat_view_needs_staff_and_change_permission_to_block(client, performance):
    (a1,) = seat_items(performance, A1)
    assert client.get(seats_url(performance)).status_code == 302
    client.force_login(UserFactory())
    assert client.get(seats_url(performance)).status_code == 302
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_performance"))
    client.force_login(viewer)
    assert client.get(seats_url(performance)).status_code == 200
    assert client.post(seats_url(performance), {"block": "1", "items": [a1.pk]}).status_code == 403
    assert InventoryItem.objects.get(pk=a1.pk).status == "available"
    zone = performance.layout.sections.get(kind="standing")
    page = client.get(seats_url(performance)).content.decode()
    assert 'name="block_standing"' not in page  # the counts, without the buttons
    response = client.post(seats_url(performance), {"block_standing": "1", "zone": zone.pk, "quantity": 1})
    assert response.status_code == 403
    assert not InventoryItem.objects.filter(status="blocked").exists()


def test_reservation_admin_lists_filters_and_shows_history(staff, performance):
    alice = UserFactory(email="alice@example.com")
    live = hold(alice, performance, A1)
    expired = hold(alice, performance, A2, now=timezone.now() - dt.timedelta(hours=1))
    url = reverse("admin:reservations_reservation_changelist")
    page = staff.get(url, {"state": "expired"}).content.decode()
    assert expired.code in page and live.code not in page
    page = staff.get(url, {"state": "held"}).content.decode()
    assert live.code in page and expired.code not in page
    assert staff.get(url, {"q": A1}).content.decode().count(live.code) >= 1
    detail = staff.get(reverse("admin:reservations_reservation_change", args=[live.pk])).content.decode()
    assert A1 in detail and "alice@example.com" in detail


def test_staff_release_a_hold_recording_who(staff, performance):
    reservation = hold(UserFactory(), performance, A1)
    confirmed = reservation_confirm(reservation=hold(UserFactory(), performance, A2))
    response = staff.post(
        reverse("admin:reservations_reservation_changelist"),
        {"action": "release_holds", "_selected_action": [reservation.pk, confirmed.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Released 1 hold." in page
    assert "1 were not live holds" in page
    reservation.refresh_from_db()
    assert reservation.status == "released"
    assert reservation.transitions.last().actor.is_staff
    assert Reservation.objects.get(pk=confirmed.pk).status == "confirmed"


def test_bookings_filter_by_one_performance_of_the_event(staff, performance):
    from events.tests.factories import PerformanceFactory

    other = PerformanceFactory(event=performance.event, layout=performance.layout)
    here, there = hold(UserFactory(), performance, A1), hold(UserFactory(), other, A1)
    url = reverse("admin:reservations_reservation_changelist")
    event = {"performance__event__id__exact": performance.event_id}
    page = staff.get(url, event).content.decode()
    assert f"?performance={other.pk}&amp;performance__event__id__exact" in page  # listed once an event is chosen
    page = staff.get(url, {**event, "performance": performance.pk}).content.decode()
    assert here.code in page and there.code not in page
    # A chosen performance filters on its own too (a link from elsewhere), and stays listed.
    page = staff.get(url, {"performance": other.pk}).content.decode()
    assert there.code in page and here.code not in page
    for tampered in ("x", "9" * 5000):  # no filter, not a 500
        response = staff.get(url, {"performance": tampered})
        assert response.status_code == 200 and here.code in response.content.decode()


def test_the_history_reads_in_the_staffs_language(staff, performance, settings):
    reservation = hold(UserFactory(), performance, A1, now=timezone.now() - dt.timedelta(hours=1))
    from reservations.services import holds_expire

    holds_expire()
    detail = reverse("admin:reservations_reservation_change", args=[reservation.pk])
    page = staff.get(detail, HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "만료" in page and "선점 시간 종료" in page
    assert "hold time ran out" not in page and ">expired<" not in page
    page = staff.get(detail).content.decode()  # English
    assert "hold time ran out" in page


def test_a_booking_s_admin_page_shows_amounts_in_won_and_its_payments(staff, fake_iamport, alice, performance):
    from payments.tests.test_flow import paid_booking

    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    page = staff.get(reverse("admin:reservations_reservation_change", args=[reservation.pk])).content.decode()
    assert "₩120,000" in page and "₩2,000" in page and "₩122,000" in page
    assert reverse("admin:payments_payment_change", args=[payment.pk]) in page
    hold_ends = page.split("field-hold_ends")[1].split("</div>\n")[0]
    assert "-" in hold_ends and str(reservation.expires_at.year) not in hold_ends  # a booking has no hold to end
    held = hold(UserFactory(), performance, A2)
    page = staff.get(reverse("admin:reservations_reservation_change", args=[held.pk])).content.decode()
    assert timezone.localtime(held.expires_at).strftime("%Y-%m-%d %H:%M") in page


def test_staff_release_a_hold_from_the_seat_view(staff, client, alice, performance):
    held = hold(alice, performance, A1)
    sold = reservation_confirm(reservation=hold(UserFactory(), performance, A2))
    page = staff.get(seats_url(performance)).content.decode()
    assert f'name="release" value="{held.code}"' in page
    assert f'name="release" value="{sold.code}"' not in page  # a paid booking is cancelled, not released
    response = staff.post(seats_url(performance), {"release": held.code}, follow=True)
    assert f"Released the seats of {held.code}." in response.content.decode()
    held.refresh_from_db()
    assert held.status == "released" and held.transitions.last().reason == "released by staff"
    assert InventoryItem.objects.get(reservation=None, seat__label=A1, performance=performance).status == "available"
    again = staff.post(seats_url(performance), {"release": sold.code}, follow=True).content.decode()
    assert "This booking has been paid for: to give the seats back, cancel the booking instead." in again
    sold.refresh_from_db()
    assert sold.status == "confirmed"
    client.force_login(alice)  # a customer cannot use the staff view
    client.post(seats_url(performance), {"release": sold.code})
    sold.refresh_from_db()
    assert sold.status == "confirmed"
