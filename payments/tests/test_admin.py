import pytest
from django.urls import reverse

from events.tests.factories import UserFactory
from payments.models import Payment
from payments.tests.test_flow import paid_booking

pytestmark = pytest.mark.django_db

A1 = "1층 A구역 A열 1번"


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_staff_refund_part_of_a_payment_with_a_reason(staff, fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    page = staff.get(url).content.decode()
    assert "₩122,000" in page  # refundable
    response = staff.post(url, {"amount": 20000, "reason": "obstructed view"}, follow=True)
    assert "Refunded ₩20,000." in response.content.decode()
    payment.refresh_from_db()
    assert payment.refunded_amount == 20000 and payment.status == "paid"
    assert payment.events.filter(kind="refunded", message="obstructed view").exists()
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_staff_refund_above_the_balance_is_refused(staff, fake_iamport, alice, performance):
    _, payment = paid_booking(fake_iamport, alice, performance, A1)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    response = staff.post(url, {"amount": payment.amount + 1, "reason": "x"})
    assert "You can refund at most ₩122,000" in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 0


def test_staff_full_refund_can_cancel_the_booking(staff, fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    staff.post(url, {"amount": payment.amount, "reason": "show cancelled", "cancel_booking": "on"})
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert (payment.status, reservation.status) == ("cancelled", "cancelled")


def test_refund_page_needs_staff(client, fake_iamport, alice, performance):
    _, payment = paid_booking(fake_iamport, alice, performance, A1)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    assert client.get(url).status_code == 302
    client.force_login(alice)
    assert client.post(url, {"amount": 1000, "reason": "me"}).status_code == 302
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 0
