import re

import pytest
from django.urls import reverse

from events.tests.factories import UserFactory
from notifications.models import Notification
from payments import services
from payments.models import Payment
from payments.tests.test_flow import paid_booking
from reservations.models import InventoryItem

pytestmark = pytest.mark.django_db

A1 = "1층 A구역 A열 1번"


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def token_of(page: str) -> str:
    return re.search(r'name="token" value="(\w+)"', page).group(1)


def refund(staff, payment, **fields):
    """Open the refund page and send its form with `fields`, as staff do."""
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    page = staff.get(url).content.decode()
    return staff.post(url, {"token": token_of(page), **fields}, follow=True)


def test_staff_refund_part_of_a_payment_with_a_reason(staff, fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    page = staff.get(url).content.decode()
    assert "₩122,000" in page  # refundable
    # What the policy would give the customer for cancelling, to measure the refund against.
    assert "the booking's refund policy would refund ₩122,000 (cancellation fee ₩0)" in page
    assert 'name="refund_account"' not in page  # a card payment goes back to the card
    response = refund(staff, payment, amount=20000, reason="obstructed view")
    assert "Refunded ₩20,000." in response.content.decode()
    payment.refresh_from_db()
    assert payment.refunded_amount == 20000 and payment.status == "paid"
    assert payment.events.filter(kind="refunded", message="obstructed view").exists()
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_staff_refund_above_the_balance_is_refused(staff, fake_iamport, alice, performance):
    _, payment = paid_booking(fake_iamport, alice, performance, A1)
    response = refund(staff, payment, amount=payment.amount + 1, reason="x")
    assert "You can refund at most ₩122,000" in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 0


def test_staff_full_refund_can_cancel_the_booking(staff, fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    refund(staff, payment, amount=payment.amount, reason="show cancelled", cancel_booking="on")
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


def test_the_refund_form_does_not_assume_cancelling(staff, fake_iamport, alice, performance):
    # A partial refund sent as it stands must not cancel a ticket (a goodwill refund keeps it).
    _, payment = paid_booking(fake_iamport, alice, performance, A1)
    page = staff.get(reverse("admin:payments_payment_refund", args=[payment.pk])).content.decode()
    assert 'name="cancel_booking"' in page and not re.search(r'name="cancel_booking"[^>]*checked', page)


def test_a_second_payment_of_a_booking_is_refunded_in_full_and_the_booking_stays(
    staff, fake_iamport, alice, performance
):
    from payments.tests.test_flow import checkout, start
    from reservations.tests.factories import hold

    reservation = hold(alice, performance, A1)
    first, second = start(reservation), start(reservation)  # two tabs
    services.payment_sync(imp_uid=checkout(fake_iamport, first)["imp_uid"], source="callback")
    second_uid = checkout(fake_iamport, second)["imp_uid"]
    fake_iamport.add_fault(status=500, count=1, match="/payments/cancel")  # its automatic refund does not get through
    services.payment_sync(imp_uid=second_uid, source="callback")
    second.refresh_from_db()
    assert second.status == "paid" and second.needs_refund
    page = refund(staff, second, amount=second.amount, reason="paid twice", cancel_booking="on").content.decode()
    assert "This payment is money to send back, not what pays for the booking" in page
    refund(staff, second, amount=second.amount, reason="paid twice")  # in full, keeping the booking: allowed here
    second.refresh_from_db()
    reservation.refresh_from_db()
    assert second.refunded_amount == second.amount and reservation.status == "confirmed"
    first.refresh_from_db()
    assert first.status == "paid" and first.refunded_amount == 0


def test_a_full_refund_that_keeps_the_booking_is_refused(staff, fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    response = refund(staff, payment, amount=payment.amount, reason="oops")  # "also cancel" unticked
    assert "would leave a valid ticket with no money paid for it" in response.content.decode()
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert (payment.refunded_amount, payment.status, reservation.status) == (0, "paid", "confirmed")
    assert services.get_gateway().find(imp_uid=payment.imp_uid).cancel_amount == 0
    # Part of it, keeping the booking (a goodwill refund), is still fine.
    refund(staff, payment, amount=payment.amount - 1000, reason="goodwill")
    payment.refresh_from_db()
    assert payment.refunded_amount == payment.amount - 1000 and payment.status == "paid"


def test_the_same_refund_form_sent_twice_refunds_once(staff, fake_iamport, alice, performance):
    _, payment = paid_booking(fake_iamport, alice, performance, A1)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    fields = {"token": token_of(staff.get(url).content.decode()), "amount": 10000, "reason": "double click"}
    staff.post(url, fields)
    again = staff.post(url, fields, follow=True).content.decode()
    assert "This refund has already been asked for: the form was sent twice." in again
    payment.refresh_from_db()
    assert payment.refunded_amount == 10000
    assert services.get_gateway().find(imp_uid=payment.imp_uid).cancel_amount == 10000
    # A second refund is a second form: it goes through.
    refund(staff, payment, amount=10000, reason="second refund, meant")
    payment.refresh_from_db()
    assert payment.refunded_amount == 20000


def test_a_virtual_account_refund_needs_a_real_account_number(staff, fake_iamport, alice, performance):
    _, payment = paid_booking(fake_iamport, alice, performance, A1, method="vbank")
    fields = {"amount": 10000, "reason": "x", "refund_bank": "004", "refund_holder": "홍길동"}
    page = refund(staff, payment, **fields, refund_account="abc-def").content.decode()
    assert "Enter the account number with digits and dashes only." in page
    payment.refresh_from_db()
    assert payment.refunded_amount == 0
    refund(staff, payment, **fields, refund_account="123-456-7890")
    payment.refresh_from_db()
    assert payment.refunded_amount == 10000


def test_a_booking_refunded_in_full_can_be_cancelled(staff, fake_iamport, alice, performance):
    # As a full refund without cancelling could leave it before it was refused: paid back, still valid.
    stuck, payment = paid_booking(fake_iamport, alice, performance, A1)
    services.payment_refund(payment=payment, amount=payment.amount, reason="earlier")
    partly, _ = paid_booking(fake_iamport, alice, performance, "1층 A구역 A열 2번")
    services.payment_refund(payment=partly.payments.get(), amount=1000, reason="goodwill")
    url = reverse("admin:reservations_reservation_changelist")
    response = staff.post(url, {"action": "cancel_refunded", "_selected_action": [stuck.pk, partly.pk]}, follow=True)
    page = response.content.decode()
    assert "Cancelled 1 booking." in page
    assert f"Booking {partly.code} still has money paid: refund it from its payment" in page
    stuck.refresh_from_db()
    partly.refresh_from_db()
    assert (stuck.status, partly.status) == ("cancelled", "confirmed")
    assert InventoryItem.objects.get(reservation=None, seat__label=A1, performance=performance).status == "available"
    sent = Notification.objects.get(reservation=stuck, kind="booking_cancelled")
    assert sent.context["refund"] == payment.amount


def test_a_refund_form_whose_attempt_was_not_sent_may_be_sent_again(staff, fake_iamport, alice, performance):
    _, payment = paid_booking(fake_iamport, alice, performance, A1)
    fake_iamport.add_fault(status=500, count=1, match="/payments/cancel")  # I'mport down for this attempt
    with pytest.raises(services.RefundNotSent):
        services.payment_refund(payment=payment, amount=10000, reason="first", token="form-1")
    # F5 or a second click sends the same form: it is a new attempt, not "already asked".
    services.payment_refund(payment=payment, amount=10000, reason="again", token="form-1")
    payment.refresh_from_db()
    assert payment.refunded_amount == 10000
    assert services.get_gateway().find(imp_uid=payment.imp_uid).cancel_amount == 10000
    with pytest.raises(services.RefundAlreadyAsked):  # and once it went through, the same form is refused
        services.payment_refund(payment=payment, amount=10000, reason="third", token="form-1")


def test_a_partial_refund_whose_answer_was_lost_is_recorded_by_the_next_one(
    staff, fake_iamport, alice, performance, settings
):
    import time

    _, payment = paid_booking(fake_iamport, alice, performance, A1)
    settings.IAMPORT_READ_TIMEOUT = 0.3
    fake_iamport.set_stall(1, count=1, match="/payments/cancel")  # refunds, but answers too late
    with pytest.raises(services.RefundNotSent):
        services.payment_refund(payment=payment, amount=10000, reason="lost answer", token="form-1")
    time.sleep(0.9)  # the refund goes through at I'mport meanwhile
    payment.refresh_from_db()
    assert payment.refunded_amount == 0  # not known here yet
    with pytest.raises(services.PaymentError, match="That refund is now recorded, and this one was not sent"):
        services.payment_refund(payment=payment, amount=5000, reason="next", token="form-2")
    payment.refresh_from_db()
    assert payment.refunded_amount == 10000 and payment.status == "paid"
    services.payment_refund(payment=payment, amount=5000, reason="next, again", token="form-3")
    payment.refresh_from_db()
    assert payment.refunded_amount == 15000
    assert services.get_gateway().find(imp_uid=payment.imp_uid).cancel_amount == 15000


def test_checking_with_iamport_records_a_partial_refund_made_there(fake_iamport, alice, performance):
    _, payment = paid_booking(fake_iamport, alice, performance, A1)
    services.get_gateway().cancel(imp_uid=payment.imp_uid, reason="console", amount=7000, checksum=payment.amount)
    result = services.payment_sync(imp_uid=payment.imp_uid, source="reconcile")
    payment.refresh_from_db()
    assert result.outcome == "refunded" and payment.refunded_amount == 7000 and payment.status == "paid"
    assert payment.reservation.status == "confirmed"
