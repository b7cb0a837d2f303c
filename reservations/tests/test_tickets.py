import pytest
from django.core.signing import BadSignature

from events.tests.factories import UserFactory
from reservations.services import reservation_confirm
from reservations.tests.factories import hold
from reservations.tickets import ticket_code_from_token, ticket_token

pytestmark = pytest.mark.django_db


def test_the_e_ticket_carries_a_signed_booking_number(performance):
    reservation = hold(UserFactory(), performance, "1층 A구역 A열 1번")
    token = ticket_token(reservation)
    assert ticket_code_from_token(token) == reservation.code
    with pytest.raises(BadSignature):
        ticket_code_from_token(token.replace(reservation.code, "T" + "2" * 9))


def test_confirmed_bookings_show_the_qr_code_to_their_owner_only(client, performance):
    owner = UserFactory()
    reservation = hold(owner, performance, "1층 A구역 A열 1번")
    client.force_login(owner)
    assert "E-ticket" not in client.get(reservation.get_absolute_url()).content.decode()  # not paid yet
    reservation_confirm(reservation=reservation)
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert "E-ticket" in page and "<svg" in page.split("E-ticket")[1]
    client.force_login(UserFactory())
    assert client.get(reservation.get_absolute_url()).status_code == 404
