"""A virtual account deposit we must send back (it came after the hold ended) goes
to an account the customer names: asked by email and on the booking, never by asking
I'mport in vain."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from events.tests.factories import UserFactory
from notifications.models import Notification
from payments import services
from payments.models import Payment
from payments.tests.test_flow import checkout, fake, start
from reservations.models import InventoryItem, Reservation
from reservations.tests.factories import hold

pytestmark = pytest.mark.django_db

A1 = "1층 A구역 A열 1번"
ACCOUNT = {"refund_bank": "004", "refund_account": "123-456-789012", "refund_holder": "홍길동"}


@pytest.fixture
def deposit_owed_back(fake_iamport, alice, performance, django_capture_on_commit_callbacks):
    """Alice's virtual account deposit arrives after her hold ended and her seat was sold."""
    reservation = hold(alice, performance, A1)
    payment = start(reservation, method="vbank")
    rsp = checkout(fake_iamport, payment, outcome="vbank")
    services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    past = timezone.now() - dt.timedelta(minutes=1)
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=past)
    InventoryItem.objects.filter(reservation=reservation).update(held_until=past)
    hold(UserFactory(), performance, A1)
    fake(fake_iamport, "vbank/deposit", imp_uid=rsp["imp_uid"])
    with django_capture_on_commit_callbacks(execute=True):
        result = services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")
    assert result.outcome == "refund_owed"
    payment.refresh_from_db()
    return reservation, payment


def page(reservation):
    return reverse("payments:refund_account", args=[reservation.code])


def test_the_customer_is_asked_for_the_account_not_i_mport_in_vain(fake_iamport, deposit_owed_back, mailoutbox):
    reservation, payment = deposit_owed_back
    assert payment.needs_refund and payment.status == "paid"
    assert fake_iamport.requests_to("/payments/cancel") == []  # no refund tried without an account
    (email,) = [m for m in mailoutbox if "refund" in m.subject.lower() or "환불" in m.subject]
    assert reverse("reservations:detail", args=[reservation.code]) in email.body
    services.payments_reconcile(older_than=dt.timedelta(0))  # and reconciliation does not nag I'mport either
    assert fake_iamport.requests_to("/payments/cancel") == []
    assert Notification.objects.filter(kind="refund_account_needed").count() == 1


def test_the_owner_names_the_account_and_is_refunded(
    client, fake_iamport, alice, deposit_owed_back, mailoutbox, django_capture_on_commit_callbacks
):
    reservation, payment = deposit_owed_back
    client.force_login(alice)
    detail = client.get(reservation.get_absolute_url()).content.decode()
    assert 'id="refund-account-needed"' in detail and page(reservation) in detail
    assert client.get(page(reservation)).status_code == 200
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page(reservation), ACCOUNT)
    assert response.status_code == 302 and response.url == reservation.get_absolute_url()
    payment.refresh_from_db()
    assert (payment.status, payment.needs_refund, payment.refunded_amount) == ("cancelled", False, payment.amount)
    # One refund call, which the fake (like I'mport) refuses for a virtual account
    # without refund_holder, refund_bank and refund_account: they were sent.
    assert len(fake_iamport.requests_to("/payments/cancel")) == 1
    assert len(mailoutbox) == 1  # the refund, by email
    # Done: the page says there is nothing more to do.
    again = client.get(page(reservation), follow=True).content.decode()
    assert "Nothing is owed back on this booking." in again


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({**ACCOUNT, "refund_account": "12ab"}, "digits and dashes only"),
        ({**ACCOUNT, "refund_bank": "999"}, "Select a valid choice"),
        ({k: v for k, v in ACCOUNT.items() if k != "refund_holder"}, "This field is required"),
    ],
)
def test_a_bad_account_is_shown_again_and_changes_nothing(client, fake_iamport, alice, deposit_owed_back, data, error):
    reservation, payment = deposit_owed_back
    client.force_login(alice)
    response = client.post(page(reservation), data)
    assert response.status_code == 400 and error in response.content.decode()
    payment.refresh_from_db()
    assert payment.needs_refund and payment.refunded_amount == 0
    assert fake_iamport.requests_to("/payments/cancel") == []


def test_only_the_owner_may_name_the_account(client, fake_iamport, bob, deposit_owed_back):
    reservation, payment = deposit_owed_back
    assert client.post(page(reservation), ACCOUNT).status_code == 302  # to sign in
    client.force_login(bob)
    assert client.post(page(reservation), ACCOUNT).status_code == 404
    client.force_login(reservation.user)
    assert client.put(page(reservation), ACCOUNT).status_code == 405
    payment.refresh_from_db()
    assert payment.needs_refund and payment.refunded_amount == 0
    assert Payment.objects.filter(pk=payment.pk, status="paid").exists()


def test_a_refund_to_the_account_whose_answer_is_lost_is_recorded_once(
    client, fake_iamport, alice, deposit_owed_back, monkeypatch
):
    from payments.gateway import Gateway, GatewayUnavailable

    reservation, payment = deposit_owed_back
    real_cancel = Gateway.cancel

    def refunds_then_times_out(self, **kwargs):
        real_cancel(self, **kwargs)
        raise GatewayUnavailable("read timed out")

    monkeypatch.setattr(Gateway, "cancel", refunds_then_times_out)
    client.force_login(alice)
    response = client.post(page(reservation), ACCOUNT)
    assert response.status_code == 302
    payment.refresh_from_db()
    assert (payment.status, payment.needs_refund, payment.refunded_amount) == ("cancelled", False, payment.amount)


def test_i_mport_not_answering_the_refund_to_the_account_says_so(client, fake_iamport, alice, deposit_owed_back):
    reservation, payment = deposit_owed_back
    fake_iamport.add_fault(status=503, count=10, match="payments")  # the refund and the look-up after it
    client.force_login(alice)
    response = client.post(page(reservation), ACCOUNT)
    assert response.status_code == 400
    assert "could not be confirmed" in response.content.decode()
    payment.refresh_from_db()
    assert payment.needs_refund and payment.refunded_amount == 0
