"""Callback, redirect and duplicated webhooks arriving at the same instant; a refund
button clicked twice at once. One effect each, on SQLite and MariaDB."""

import pytest

from events.tests.factories import UserFactory
from payments import services
from payments.models import Payment
from payments.tests.test_flow import checkout, paid_booking, start
from reservations.tests.factories import hold
from ticketing.testing import race

pytestmark = pytest.mark.django_db(transaction=True)

A1 = "1층 A구역 A열 1번"


def test_simultaneous_syncs_of_one_payment_confirm_it_once(fake_iamport, performance):
    reservation = hold(UserFactory(), performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)

    results = race(lambda i: services.payment_sync(imp_uid=rsp["imp_uid"], source=f"racer{i}").outcome, 8)
    assert sorted(results) == ["paid"] + ["unchanged"] * 7, results
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"
    assert reservation.transitions.filter(to_status="confirmed").count() == 1
    assert Payment.objects.get(pk=payment.pk).events.filter(kind="paid").count() == 1


def test_a_refund_clicked_twice_at_once_refunds_once(fake_iamport, performance):
    customer = UserFactory()
    _, payment = paid_booking(fake_iamport, customer, performance, A1)

    def refund(i):
        return services.payment_refund(payment=payment, amount=payment.amount, reason=f"click {i}")

    results = race(refund, 4)
    refunded = [r for r in results if isinstance(r, Payment)]
    refused = [r for r in results if isinstance(r, services.PaymentError)]
    assert len(refunded) == 1 and len(refused) == 3, results
    payment.refresh_from_db()
    assert payment.refunded_amount == payment.amount
    assert services.get_gateway().find(imp_uid=payment.imp_uid).cancel_amount == payment.amount


def test_one_refund_form_sent_twice_at_once_refunds_once(fake_iamport, performance):
    _, payment = paid_booking(fake_iamport, UserFactory(), performance, A1)

    def refund(i):  # a part only: the checksum alone would not catch the second one sent later
        return services.payment_refund(payment=payment, amount=10000, reason=f"click {i}", token="form-1")

    results = race(refund, 4)
    assert len([r for r in results if isinstance(r, Payment)]) == 1, results
    assert services.get_gateway().find(imp_uid=payment.imp_uid).cancel_amount == 10000
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 10000


def test_two_partial_refunds_at_once_send_one_and_say_why_not_the_other(fake_iamport, performance):
    _, payment = paid_booking(fake_iamport, UserFactory(), performance, A1)

    def refund(i):  # two members of staff, two forms, the same instant
        return services.payment_refund(payment=payment, amount=10000, reason=f"staff {i}", token=f"form-{i}")

    # I'mport answering slowly keeps both refunds in flight together, as the same instant means.
    fake_iamport.set_stall(0.3)
    try:
        results = race(refund, 2)
    finally:
        fake_iamport.set_stall(0)
    (refused,) = [r for r in results if isinstance(r, services.PaymentError)]
    assert "I'mport had already refunded more of this payment than was recorded here" in refused.message
    assert services.get_gateway().find(imp_uid=payment.imp_uid).cancel_amount == 10000
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 10000
