"""E-tickets: one signed code per ticket, admitted once at the entrance."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core.signing import BadSignature
from django.urls import reverse
from django.utils import timezone

from events.models import Discount, Performance
from events.tests.factories import PerformanceFactory, UserFactory
from reservations.checkin import admission_counts, ticket_admit
from reservations.models import Reservation, ReservationLine
from reservations.services import reservation_cancel, reservation_choose_discounts, reservation_confirm
from reservations.tests.factories import hold
from reservations.tickets import ticket_from_token, ticket_token
from ticketing.testing import race

pytestmark = pytest.mark.django_db

A1, A2 = "1층 A구역 A열 1번", "1층 A구역 A열 2번"


@pytest.fixture
def booking(performance):
    reservation = hold(UserFactory(), performance, A1, A2)
    return reservation_confirm(reservation=reservation)


@pytest.fixture
def door(db):
    """Door staff: staff with the check-in permission and nothing else."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="check_in"))
    return user


def token_of(reservation, label):
    return ticket_token(reservation.lines.get(label=label), reservation.code)


def test_each_ticket_carries_its_own_signed_code(booking):
    a1, a2 = booking.lines.order_by("id")
    assert ticket_from_token(ticket_token(a1, booking.code)) == (booking.code, a1.pk)
    assert ticket_token(a1, booking.code) != ticket_token(a2, booking.code)
    forged = ticket_token(a1, booking.code).replace(f"-{a1.pk}:", f"-{a2.pk}:")
    with pytest.raises(BadSignature):
        ticket_from_token(forged)


def test_confirmed_bookings_show_a_code_per_ticket_to_their_owner_only(client, performance):
    owner = UserFactory()
    reservation = hold(owner, performance, A1, A2)
    client.force_login(owner)
    assert "E-ticket" not in client.get(reservation.get_absolute_url()).content.decode()  # not paid yet
    reservation_confirm(reservation=reservation)
    page = client.get(reservation.get_absolute_url()).content.decode()
    section = page.split('id="ticket-title"')[1].split("</section>")[0]
    assert section.count("<svg") == 2 and A1 in section and A2 in section
    client.force_login(UserFactory())
    assert client.get(reservation.get_absolute_url()).status_code == 404


def test_a_ticket_is_admitted_once(booking, performance, door):
    first = ticket_admit(token=token_of(booking, A1), performance=performance, staff=door)
    again = ticket_admit(token=token_of(booking, A1), performance=performance, staff=door)
    companion = ticket_admit(token=token_of(booking, A2), performance=performance, staff=door)

    assert first.admitted and first.message == f"Admitted: {A1}."
    assert not again.admitted and "Already admitted at" in again.message and door.email in again.message
    assert companion.admitted
    assert admission_counts(performance) == (2, 2)
    line = ReservationLine.objects.get(reservation=booking, label=A1)
    assert line.admitted_by == door and line.admitted_at is not None


def test_a_discounted_ticket_says_what_proof_to_check(booking, performance, door):
    youth = Discount.objects.create(
        event=performance.event, name="청소년 할인", percent_off=20, conditions="만 13~18세 · 학생증"
    )
    Reservation.objects.filter(pk=booking.pk).update(status="held")  # chosen before paying
    a1, a2 = booking.lines.order_by("id")
    reservation_choose_discounts(reservation=booking, choices={a1.pk: youth.pk, a2.pk: None})
    Reservation.objects.filter(pk=booking.pk).update(status="confirmed")

    admission = ticket_admit(token=token_of(booking, A1), performance=performance, staff=door)
    assert admission.admitted and admission.proof == "청소년 할인: 만 13~18세 · 학생증"
    assert ticket_admit(token=token_of(booking, A2), performance=performance, staff=door).proof == ""


@pytest.mark.parametrize("case", ["garbage", "other performance", "cancelled booking", "unpaid", "ticket cancelled"])
def test_a_ticket_that_is_not_valid_here_is_stopped_and_says_why(booking, performance, door, case, fake_iamport):
    token = token_of(booking, A1)
    at = performance
    if case == "garbage":
        token, expected = "T123-4:forged", "not one of our tickets"
    elif case == "other performance":
        at = PerformanceFactory(event=performance.event, layout=performance.layout)
        expected = "not this performance"
    elif case == "cancelled booking":
        reservation_cancel(reservation=booking, actor=None)
        expected = "This booking is Cancelled"
    elif case == "unpaid":
        unpaid = hold(UserFactory(), performance, "1층 A구역 B열 1번")
        token, expected = token_of(unpaid, "1층 A구역 B열 1번"), "This booking is Held"
    else:
        ReservationLine.objects.filter(reservation=booking, label=A1).delete()
        from reservations.models import CancelledTicket

        CancelledTicket.objects.create(
            reservation=booking, label=A1, grade_name="R", price=1, cancelled_at=timezone.now()
        )
        expected = "cancelled by its customer"

    admission = ticket_admit(token=token, performance=at, staff=door)

    assert not admission.admitted
    assert expected in admission.message
    assert not ReservationLine.objects.filter(admitted_at__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_two_scanners_reading_one_code_at_once_admit_it_once(performance):
    booking = reservation_confirm(reservation=hold(UserFactory(), performance, A1))
    staff = UserFactory(is_staff=True)
    token = token_of(booking, A1)

    results = race(lambda i: ticket_admit(token=token, performance=performance, staff=staff), 6)

    assert sorted(r.admitted for r in results) == [False] * 5 + [True], results
    assert ReservationLine.objects.filter(admitted_at__isnull=False).count() == 1


# --- The entrance page in the admin ---------------------------------------------------


def test_door_staff_scan_tickets_on_the_entrance_page(client, booking, performance, door):
    # Tonight's performance is listed (sales closed an hour before).
    now = timezone.now()
    Performance.objects.filter(pk=performance.pk).update(
        starts_at=now + dt.timedelta(hours=2), sales_close_at=now + dt.timedelta(hours=1)
    )
    client.force_login(door)
    listing = client.get(reverse("admin:reservations_checkin")).content.decode()
    url = reverse("admin:reservations_checkin_scan", args=[performance.pk])
    assert url in listing

    page = client.post(url, {"code": token_of(booking, A1)}).content.decode()
    assert "ADMIT" in page and f"Admitted: {A1}." in page and "1 of 2 tickets admitted." in page
    page = client.post(url, {"code": token_of(booking, A1)}).content.decode()
    assert "STOP" in page and "Already admitted at" in page
    assert 'id="checkin-recent"' in page


def test_the_entrance_page_needs_the_check_in_permission(client, booking, performance):
    url = reverse("admin:reservations_checkin_scan", args=[performance.pk])
    data = {"code": token_of(booking, A1)}
    anonymous = client.post(url, data)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    client.force_login(UserFactory())  # a customer
    assert client.post(url, data).status_code == 302
    client.force_login(UserFactory(is_staff=True))  # staff without the permission
    assert client.post(url, data).status_code == 403
    assert client.get(reverse("admin:reservations_checkin")).status_code == 403
    assert not ReservationLine.objects.filter(admitted_at__isnull=False).exists()
