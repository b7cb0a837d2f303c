"""The payment flow end to end: our services and views, the real iamport-rest-client,
and the fake I'mport server over HTTP."""

import datetime as dt
import re

import pytest
import requests
from django.urls import reverse
from django.utils import timezone

from events.tests.factories import UserFactory
from payments import services
from payments.models import Payment, PaymentEvent
from payments.refund_policy import Policy, cancellation_deadline
from reservations.models import InventoryItem, Reservation
from reservations.tests.factories import hold

pytestmark = pytest.mark.django_db

A1, A2 = "1층 A구역 A열 1번", "1층 A구역 A열 2번"
PAY_FORM = {"method": "card", "agree": "on", "booker_name": "김예매", "booker_phone": "010-1234-5678"}


def fake(fake_iamport, path, **payload):
    response = requests.post(fake_iamport.url + "__fake__/" + path, json=payload, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def checkout(fake_iamport, payment, outcome="approve", amount=None, **extra):
    """What the customer does in I'mport's window; returns the SDK's rsp."""
    data = fake(
        fake_iamport,
        "checkout",
        merchant_uid=payment.merchant_uid,
        amount=payment.amount if amount is None else amount,
        pay_method=payment.method,
        outcome=outcome,
        **extra,
    )
    return data["rsp"]


def start(reservation, method="card"):
    return services.payment_start(reservation=reservation, method=method)


def test_card_payment_confirms_the_booking_once(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1, A2)
    payment = start(reservation)
    reservation.refresh_from_db()
    assert reservation.status == "pending_payment"
    assert payment.amount == reservation.total_amount == 244000
    rsp = checkout(fake_iamport, payment)
    first = services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    again = services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")
    assert (first.outcome, again.outcome) == ("paid", "unchanged")
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert payment.status == "paid" and payment.imp_uid == rsp["imp_uid"]
    assert reservation.status == "confirmed"
    assert set(InventoryItem.objects.filter(reservation=reservation).values_list("status", flat=True)) == {"sold"}
    assert reservation.transitions.filter(to_status="confirmed").count() == 1
    assert list(payment.events.values_list("kind", flat=True)).count("paid") == 1


def test_the_refund_policy_is_frozen_on_the_payment(fake_iamport, alice, performance):
    payment = start(hold(alice, performance, A1))
    assert payment.refund_policy["free_days_after_booking"] == 7
    assert payment.refund_policy["cutoff_hour_day_before"] == 17


def test_an_amount_changed_in_the_browser_is_refused_by_prepare(fake_iamport, alice, performance):
    payment = start(hold(alice, performance, A1))
    rsp = checkout(fake_iamport, payment, amount=100)
    assert not rsp.get("imp_uid")
    assert rsp.get("error_msg")


def test_a_paid_amount_that_does_not_match_is_refunded_in_full(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    # I'mport registered another amount (as if our prepare had been bypassed).
    Payment.objects.filter(pk=payment.pk).update(amount=payment.amount + 1000)
    rsp = checkout(fake_iamport, payment)
    result = services.payment_sync(imp_uid=rsp["imp_uid"], source="redirect")
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert "does not match" in result.message
    assert payment.status == "cancelled" and not payment.needs_refund
    assert payment.refunded_amount == payment.amount - 1000  # all that I'mport took
    assert reservation.status == "pending_payment"
    remote = requests.get(fake_iamport.url + "__fake__/payments", timeout=10).json()
    assert any(p["imp_uid"] == rsp["imp_uid"] and p["status"] == "cancelled" for p in _payments(remote))


def _payments(remote):
    return remote if isinstance(remote, list) else remote.get("payments", remote.get("response", []))


def test_a_late_payment_confirms_if_the_seats_are_still_free(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(minutes=9))
    payment = start(reservation)
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    rsp = checkout(fake_iamport, payment)
    assert services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook").outcome == "paid"
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_a_late_payment_for_seats_sold_meanwhile_is_refunded(
    fake_iamport, alice, performance, mailoutbox, django_capture_on_commit_callbacks
):
    reservation = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(minutes=9))
    payment = start(reservation)
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    InventoryItem.objects.filter(reservation=reservation).update(held_until=timezone.now() - dt.timedelta(minutes=1))
    hold(UserFactory(), performance, A1)  # someone else takes the seat
    rsp = checkout(fake_iamport, payment)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")
    payment.refresh_from_db()
    assert "refunded in full" in result.message
    # Told by email too: a late deposit arrives by webhook, with nobody on the page.
    (email,) = mailoutbox
    assert "the seats were taken" in email.body and "122,000원" in email.body  # in her language (ko)
    assert payment.status == "cancelled" and payment.refunded_amount == payment.amount
    reservation.refresh_from_db()
    assert reservation.status != "confirmed"


def test_a_late_payment_past_the_limit_is_refunded_with_the_reason(fake_iamport, alice, performance):
    performance.event.ticket_limit = 2
    performance.event.save(update_fields=["ticket_limit"])
    reservation = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(minutes=9))
    payment = start(reservation)
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    InventoryItem.objects.filter(reservation=reservation).update(held_until=timezone.now() - dt.timedelta(minutes=1))
    hold(alice, performance, A2, "1층 A구역 A열 3번")  # her places at the limit again, in another hold
    rsp = checkout(fake_iamport, payment)

    result = services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")

    assert "past the limit of 2 tickets" in result.message and "refunded in full" in result.message
    payment.refresh_from_db()
    assert payment.status == "cancelled" and payment.refunded_amount == payment.amount
    reservation.refresh_from_db()
    assert reservation.status != "confirmed"


# The curtain went up a minute ago (sales closed before it, as they must).
STARTED = {
    "starts_at": timezone.now() - dt.timedelta(minutes=1),
    "sales_close_at": timezone.now() - dt.timedelta(minutes=2),
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "cancelled"}, "This performance has been cancelled."),
        (STARTED, "This performance has already started."),
    ],
)
def test_a_payment_for_a_cancelled_or_started_performance_is_refunded(fake_iamport, alice, performance, change, reason):
    # The customer was at checkout when staff cancelled the show (or the deposit came
    # in after the curtain): no ticket, the money back.
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    type(performance).objects.filter(pk=performance.pk).update(**change)
    rsp = checkout(fake_iamport, payment)

    result = services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")

    assert result.outcome == "refund_owed"  # and refunded at once, below
    assert result.message == f"{reason} Your payment is being refunded in full."
    payment.refresh_from_db()
    assert payment.status == "cancelled" and payment.refunded_amount == payment.amount
    reservation.refresh_from_db()
    assert reservation.status != "confirmed"
    assert not InventoryItem.objects.filter(reservation=reservation, status="sold").exists()


def test_a_refund_that_failed_is_named_and_tried_again_by_the_next_sync(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    type(performance).objects.filter(pk=performance.pk).update(status="cancelled")
    rsp = checkout(fake_iamport, payment)
    fake_iamport.add_fault(status=500, count=1, match="payments/cancel")  # the refund call fails once

    first = services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    payment.refresh_from_db()
    assert (payment.status, payment.needs_refund, payment.refunded_amount) == ("paid", True, 0)

    # The webhook comes next: the money is still owed, so it is not "confirmed".
    again = services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")

    assert first.outcome == again.outcome == "refund_owed"
    assert again.message == "This performance has been cancelled. Your payment is being refunded in full."
    payment.refresh_from_db()
    assert (payment.status, payment.needs_refund) == ("cancelled", False)
    assert payment.refunded_amount == payment.amount
    assert list(payment.events.values_list("kind", flat=True)).count("auto_refunded") == 1
    reservation.refresh_from_db()
    assert reservation.status != "confirmed"


@pytest.mark.parametrize("change", [{"status": "cancelled"}, STARTED])
def test_no_payment_starts_for_a_cancelled_or_started_performance(fake_iamport, alice, performance, change):
    reservation = hold(alice, performance, A1)
    type(performance).objects.filter(pk=performance.pk).update(**change)
    reservation = Reservation.objects.get(pk=reservation.pk)
    with pytest.raises(services.PaymentError, match=r"cancelled|already started"):
        start(reservation)
    assert not Payment.objects.exists()
    reservation.refresh_from_db()
    assert reservation.status == "held"


def test_a_payment_still_confirms_after_sales_close_during_checkout(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    type(performance).objects.filter(pk=performance.pk).update(sales_close_at=timezone.now() - dt.timedelta(seconds=1))
    rsp = checkout(fake_iamport, payment)
    assert services.payment_sync(imp_uid=rsp["imp_uid"], source="callback").outcome == "paid"


def test_virtual_account_waits_for_the_deposit_and_keeps_the_seats(
    fake_iamport, alice, performance, mailoutbox, django_capture_on_commit_callbacks
):
    reservation = hold(alice, performance, A1)
    payment = start(reservation, method="vbank")
    rsp = checkout(fake_iamport, payment, outcome="vbank")
    with django_capture_on_commit_callbacks(execute=True):
        result = services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert result.outcome == "awaiting_deposit"
    assert payment.status == "awaiting_deposit" and payment.vbank_num and payment.vbank_due
    assert reservation.status == "pending_payment"
    assert reservation.expires_at == payment.vbank_due
    assert InventoryItem.objects.get(reservation=reservation).held_until == payment.vbank_due
    assert len(mailoutbox) == 1 and payment.vbank_num in mailoutbox[0].body
    fake(fake_iamport, "vbank/deposit", imp_uid=rsp["imp_uid"])
    assert services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook").outcome == "paid"
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_a_payment_for_seats_released_meanwhile_is_refunded_saying_so(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    client.force_login(alice)
    assert 'id="release-while-paying"' not in client.get(reservation.get_absolute_url()).content.decode()
    payment = start(reservation)  # the card window is open...
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert 'id="release-while-paying"' in page  # ...and the page warns before releasing
    client.post(reverse("reservations:release", args=[reservation.code]))
    rsp = checkout(fake_iamport, payment)  # then the card payment goes through

    result = services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")

    assert result.message == "These seats were released before your payment arrived, so it is being refunded in full."
    payment.refresh_from_db()
    assert payment.status == "cancelled" and payment.refunded_amount == payment.amount
    reservation.refresh_from_db()
    assert reservation.status == "released"
    assert InventoryItem.objects.get(performance=performance, seat__label=A1).status == "available"


def test_a_declined_card_lets_the_customer_try_again(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment, outcome="decline")
    if rsp.get("imp_uid"):
        services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    else:
        Payment.objects.filter(pk=payment.pk).update(status="failed")
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert payment.status == "failed"
    assert reservation.status in ("held", "pending_payment")
    second = start(reservation)
    rsp = checkout(fake_iamport, second)
    services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_reconciliation_confirms_a_payment_whose_webhook_never_came(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    checkout(fake_iamport, payment)  # paid at I'mport; nobody told us
    assert services.payments_reconcile(older_than=dt.timedelta(0)) == 1
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"
    assert services.payments_reconcile(older_than=dt.timedelta(0)) == 0


def test_gateway_down_mid_sync_is_retried_later_without_losing_money(fake_iamport, alice, performance, settings):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)
    good_url = settings.IAMPORT_API_URL
    settings.IAMPORT_API_URL = "http://127.0.0.1:9/"  # nothing listens there
    with pytest.raises(services.GatewayUnavailable):
        services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")
    reservation.refresh_from_db()
    assert reservation.status == "pending_payment"
    settings.IAMPORT_API_URL = good_url
    services.payments_reconcile(older_than=dt.timedelta(0))
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_a_forged_imp_uid_changes_nothing(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    start(reservation)
    with pytest.raises(services.PaymentNotFound):
        services.payment_sync(imp_uid="imp_000000000000", source="webhook")
    reservation.refresh_from_db()
    assert reservation.status == "pending_payment"
    assert PaymentEvent.objects.filter(kind="unknown_imp_uid").exists()


def paid_booking(fake_iamport, user, performance, *labels, method="card"):
    reservation = hold(user, performance, *labels)
    payment = start(reservation, method=method)
    rsp = checkout(fake_iamport, payment, outcome="vbank" if method == "vbank" else "approve")
    if method == "vbank":
        services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
        fake(fake_iamport, "vbank/deposit", imp_uid=rsp["imp_uid"])
    services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    reservation.refresh_from_db()
    payment.refresh_from_db()
    assert reservation.status == "confirmed"
    return reservation, payment


def test_cancelling_refunds_what_the_policy_allows_and_frees_the_seats(fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    quote = services.refund_preview(reservation=reservation)
    assert quote.allowed and quote.total_refund == 244000  # booked today: all back, fee included
    services.booking_cancel(reservation=reservation, actor=alice)
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert reservation.status == "cancelled"
    assert payment.refunded_amount == 244000 and payment.status == "cancelled"
    assert set(
        InventoryItem.objects.filter(pk__in=reservation.lines.values("item")).values_list("status", flat=True)
    ) == {"available"}


def test_a_partial_refund_sends_amount_and_checksum(fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    later = reservation.performance.starts_at - dt.timedelta(days=5)  # 20% fee, booking fee kept
    Reservation.objects.filter(pk=reservation.pk).update(confirmed_at=later - dt.timedelta(days=20))
    reservation.refresh_from_db()
    quote = services.booking_cancel(reservation=reservation, actor=alice, now=later)
    payment.refresh_from_db()
    assert quote.cancellation_fee == 120000 * 20 // 100
    assert payment.refunded_amount == quote.total_refund == 96000
    assert payment.status == "paid"  # partly refunded
    remote = services.get_gateway().find(imp_uid=payment.imp_uid)
    assert remote.cancel_amount == 96000


def test_refunds_never_exceed_what_is_left(fake_iamport, alice, performance):
    _, payment = paid_booking(fake_iamport, alice, performance, A1)
    with pytest.raises(services.PaymentError, match="at most"):
        services.payment_refund(payment=payment, amount=payment.amount + 1, reason="too much")
    services.payment_refund(payment=payment, amount=10000, reason="goodwill")
    payment.refresh_from_db()
    with pytest.raises(services.PaymentError, match="at most"):
        services.payment_refund(payment=payment, amount=payment.amount, reason="again")
    assert payment.refunded_amount == 10000


def test_a_refund_whose_answer_is_lost_is_found_at_i_mport_and_recorded(fake_iamport, alice, performance, monkeypatch):
    from payments.gateway import Gateway, GatewayUnavailable

    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    real_cancel = Gateway.cancel

    def refunds_then_times_out(self, **kwargs):
        real_cancel(self, **kwargs)  # I'mport refunds...
        raise GatewayUnavailable("read timed out")  # ...and the answer never arrives

    monkeypatch.setattr(Gateway, "cancel", refunds_then_times_out)
    services.booking_cancel(reservation=reservation, actor=alice)

    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert payment.refunded_amount == payment.amount and payment.status == "cancelled"
    assert reservation.status == "cancelled"
    kinds = list(payment.events.values_list("kind", flat=True))
    assert kinds.count("refund_failed") == 1 and kinds.count("refunded") == 1


def test_a_refund_i_mport_does_not_show_after_a_lost_answer_changes_nothing(
    fake_iamport, alice, performance, monkeypatch
):
    from payments.gateway import Gateway, GatewayUnavailable

    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)

    def times_out(self, **kwargs):
        raise GatewayUnavailable("connection refused")

    monkeypatch.setattr(Gateway, "cancel", times_out)
    with pytest.raises(services.RefundNotSent, match="could not be confirmed"):
        services.booking_cancel(reservation=reservation, actor=alice)
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert (payment.status, payment.refunded_amount, reservation.status) == ("paid", 0, "confirmed")


def test_a_double_clicked_cancel_refunds_once(fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    services.booking_cancel(reservation=reservation, actor=alice)
    reservation.refresh_from_db()
    with pytest.raises(services.PaymentError, match="Only a confirmed booking"):
        services.booking_cancel(reservation=reservation, actor=alice)
    payment.refresh_from_db()
    assert payment.refunded_amount == payment.amount


def test_virtual_account_refunds_need_a_refund_account(fake_iamport, alice, performance):
    reservation, _payment = paid_booking(fake_iamport, alice, performance, A1, method="vbank")
    with pytest.raises(services.PaymentError, match="bank account"):
        services.booking_cancel(reservation=reservation, actor=alice)
    services.booking_cancel(
        reservation=reservation, actor=alice, refund_bank="004", refund_account="123-456-789", refund_holder="김예매"
    )
    reservation.refresh_from_db()
    assert reservation.status == "cancelled"


# --- Views --------------------------------------------------------------------


def test_pay_view_renders_the_sdk_call_with_the_server_amount(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    client.force_login(alice)
    response = client.post(reverse("payments:pay", args=[reservation.code]), PAY_FORM)
    page = response.content.decode()
    payment = Payment.objects.get(reservation=reservation)
    assert response.status_code == 200
    assert f'"merchant_uid": "{payment.merchant_uid}"' in page
    assert f'"amount": {reservation.total_amount}' in page
    assert "__fake__/iamport.js" in page


def test_pay_needs_the_policy_agreement_and_the_owner(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    url = reverse("payments:pay", args=[reservation.code])
    assert client.post(url, PAY_FORM).status_code == 302  # to sign in
    client.force_login(UserFactory())
    assert client.post(url, PAY_FORM).status_code == 404
    client.force_login(alice)
    response = client.post(url, {**PAY_FORM, "agree": ""})
    assert response.status_code == 400
    assert "Please agree to the refund policy" in response.content.decode()
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"booker_name": ""}, "Enter the name of the person booking."),
        ({"booker_phone": ""}, "Enter a phone number we can reach you on about this booking."),
        ({"booker_phone": "010-12"}, "Enter a valid phone number"),
    ],
)
def test_checkout_needs_who_is_booking_and_keeps_what_was_typed(
    client, fake_iamport, alice, performance, change, error
):
    reservation = hold(alice, performance, A1)
    client.force_login(alice)
    response = client.post(reverse("payments:pay", args=[reservation.code]), {**PAY_FORM, **change})
    page = response.content.decode()
    assert response.status_code == 400
    assert error in page
    assert 'id="pay-errors"' in page
    assert 'value="김예매"' in page or change.get("booker_name") == ""  # shown as typed
    assert not Payment.objects.exists()
    reservation.refresh_from_db()
    assert (reservation.status, reservation.booker_phone) == ("held", "")


def test_the_booker_is_kept_on_the_booking_and_sent_to_iamport(client, fake_iamport, alice, performance):
    alice.name, alice.phone = "앨리스", "+821099998888"
    alice.save()
    reservation = hold(alice, performance, A1)
    client.force_login(alice)
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert 'value="앨리스"' in page and 'value="010-9999-8888"' in page  # from the profile

    response = client.post(reverse("payments:pay", args=[reservation.code]), PAY_FORM)

    params = response.context["params"]  # what the page hands to I'mport's SDK
    assert (params["buyer_name"], params["buyer_email"]) == ("김예매", alice.email)
    assert params["buyer_tel"] == "010-1234-5678"  # as PGs want it, not +8210...
    reservation.refresh_from_db()
    assert (reservation.booker_name, reservation.booker_phone) == ("김예매", "+821012345678")
    alice.refresh_from_db()
    assert alice.phone == "+821099998888"  # the profile is the customer's to change
    again = client.get(reservation.get_absolute_url()).content.decode()
    assert 'value="김예매"' in again and 'value="010-1234-5678"' in again  # paying again


def test_paying_for_an_expired_hold_is_refused(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1, now=timezone.now() - dt.timedelta(hours=1))
    client.force_login(alice)
    response = client.post(reverse("payments:pay", args=[reservation.code]), PAY_FORM, follow=True)
    assert "Your hold has expired" in response.content.decode()
    assert not Payment.objects.exists()
    assert not fake_iamport.requests_to("/payments/prepare")  # nothing registered with I'mport


def test_paying_from_the_page_of_released_seats_says_they_were_released(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    client.force_login(alice)
    client.post(reverse("reservations:release", args=[reservation.code]))
    # The checkout page kept open in another tab, or shown again by Back.
    response = client.post(reverse("payments:pay", args=[reservation.code]), PAY_FORM, follow=True)
    page = response.content.decode()
    assert "These seats were released, so there is nothing to pay." in page and "expired" not in page
    assert not Payment.objects.exists()


def test_the_pay_address_opened_directly_goes_to_the_booking(client, fake_iamport, alice, bob, performance):
    reservation = hold(alice, performance, A1)
    url = reverse("payments:pay", args=[reservation.code])
    assert client.get(url).status_code == 302 and "/accounts/login/" in client.get(url).url
    client.force_login(bob)
    assert client.get(url).status_code == 404
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 302 and response.url == reservation.get_absolute_url()
    assert not Payment.objects.exists()


def test_a_payment_window_left_without_paying_is_not_listed_as_owed(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    start(reservation)  # opened and left: nothing charged
    closed = start(reservation)
    rsp = checkout(fake_iamport, closed, outcome="abandon")  # closed with the window's own button
    services.payment_window_failed(payment=closed, error_msg=rsp.get("error_msg", "closed"))
    closed.refresh_from_db()
    assert closed.status == "failed"
    paid = start(reservation)
    services.payment_sync(imp_uid=checkout(fake_iamport, paid)["imp_uid"], source="callback")
    client.force_login(alice)
    page = client.get(reservation.get_absolute_url()).content.decode()
    listed = page.split('id="payments-title"')[1].split("</section>")[0]
    assert listed.count("<li>") == 1 and "Paid" in listed and "Waiting for payment" not in listed
    assert "Failed" not in listed


def test_mobile_redirect_confirms_for_the_owner_only(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)
    url = reverse("payments:return") + f"?imp_uid={rsp['imp_uid']}&merchant_uid={payment.merchant_uid}&imp_success=true"
    response = client.get(url)  # anonymous: to sign in, then back here
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    reservation.refresh_from_db()
    assert reservation.status == "pending_payment"  # neither of them finished it
    client.force_login(alice)
    response = client.get(url, follow=True)
    assert "your booking is confirmed" in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_callback_reports_and_redirects(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)
    url, body = reverse("payments:complete"), {"imp_uid": rsp["imp_uid"], "merchant_uid": payment.merchant_uid}
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
    client.force_login(UserFactory())
    assert client.post(url, body, content_type="application/json").status_code == 404
    reservation.refresh_from_db()
    assert reservation.status == "pending_payment"
    client.force_login(alice)
    response = client.post(url, body, content_type="application/json")
    assert response.json()["ok"] is True
    assert response.json()["redirect"] == reservation.get_absolute_url()


@pytest.mark.parametrize("as_json", [True, False])
def test_webhook_accepts_json_and_form_and_syncs(client, fake_iamport, alice, performance, as_json):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)
    body = {"imp_uid": rsp["imp_uid"], "merchant_uid": payment.merchant_uid, "status": "paid"}
    url = reverse("payments:webhook")
    response = client.post(url, body, content_type="application/json") if as_json else client.post(url, body)
    assert response.status_code == 200
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_webhook_rejects_garbage_and_ignores_forged_ids(client, fake_iamport):
    url = reverse("payments:webhook")
    assert client.post(url, "{not json", content_type="application/json").status_code == 400
    assert client.post(url, {}).status_code == 400
    assert client.get(url).status_code == 405
    assert client.post(url, {"imp_uid": "imp_999999999999", "status": "paid"}).status_code == 200
    assert PaymentEvent.objects.filter(kind="unknown_imp_uid", imp_uid="imp_999999999999").exists()


def test_cancel_page_previews_the_refund_then_cancels(client, fake_iamport, alice, performance):
    reservation, _ = paid_booking(fake_iamport, alice, performance, A1)
    url = reverse("payments:cancel", args=[reservation.code])
    assert client.get(url).status_code == 302
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.force_login(alice)
    page = client.get(url).content.decode()
    assert "You will get back" in page and "₩122,000" in page
    token = page.split('name="token" value="')[1].split('"')[0]
    assert client.post(url, {"token": "tampered"}).status_code == 400
    response = client.post(url, {"token": token}, follow=True)
    assert "Your booking is cancelled." in response.content.decode()
    reservation.refresh_from_db()
    assert reservation.status == "cancelled"


def test_confirmed_bookings_cannot_be_paid_twice(fake_iamport, alice, performance):
    reservation, _ = paid_booking(fake_iamport, alice, performance, A1)
    with pytest.raises(services.PaymentError):
        start(reservation)


def test_account_deletion_waits_for_an_open_virtual_account_then_erases_buyer_data(fake_iamport, alice, performance):
    from accounts.services import AccountDeletionRefused, user_delete

    reservation = hold(alice, performance, A1)
    payment = start(reservation, method="vbank")
    rsp = checkout(fake_iamport, payment, outcome="vbank", buyer_email=alice.email, buyer_name="김예매")
    services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    with pytest.raises(AccountDeletionRefused, match=reservation.code):
        user_delete(user=alice)
    # The deposit never comes; the account expires, then the customer leaves.
    Payment.objects.filter(pk=payment.pk).update(status="failed")
    user_delete(user=alice)
    payment.refresh_from_db()
    assert payment.gateway_payload["buyer_email"] == "" and payment.gateway_payload["buyer_name"] == ""
    assert payment.gateway_payload["amount"] == payment.amount  # the accounting record stays


def test_a_stale_webhook_arriving_after_a_newer_one_changes_nothing(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation, method="vbank")
    rsp = checkout(fake_iamport, payment, outcome="vbank")
    fake(fake_iamport, "vbank/deposit", imp_uid=rsp["imp_uid"])
    url = reverse("payments:webhook")
    # The deposit's "paid" webhook is processed first, the issuance's "ready" one late.
    for status in ("paid", "ready", "paid"):
        assert (
            client.post(
                url, {"imp_uid": rsp["imp_uid"], "merchant_uid": payment.merchant_uid, "status": status}
            ).status_code
            == 200
        )
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert (payment.status, reservation.status) == ("paid", "confirmed")
    assert reservation.transitions.filter(to_status="confirmed").count() == 1


def test_a_gateway_500_mid_sync_is_retried_without_harm(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)
    fake_iamport.add_fault(status=500, count=1, match=rsp["imp_uid"])
    with pytest.raises(services.GatewayUnavailable):
        services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")
    reservation.refresh_from_db()
    assert reservation.status == "pending_payment"
    assert services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook").outcome == "paid"


def test_a_stale_checkout_tab_says_the_booking_is_paid_not_that_the_hold_expired(
    client, fake_iamport, alice, performance
):
    reservation, _payment = paid_booking(fake_iamport, alice, performance, A1)
    client.force_login(alice)
    response = client.post(reverse("payments:pay", args=[reservation.code]), PAY_FORM, follow=True)
    page = response.content.decode()
    assert "This booking is already paid: there is nothing more to pay." in page
    assert "Your hold has expired" not in page
    assert Payment.objects.filter(reservation=reservation).count() == 1


def test_cancelling_again_from_an_older_tab_says_it_is_cancelled(client, fake_iamport, alice, performance):
    reservation, _payment = paid_booking(fake_iamport, alice, performance, A1)
    services.booking_cancel(reservation=reservation, actor=alice)
    client.force_login(alice)
    response = client.get(reverse("payments:cancel", args=[reservation.code]), follow=True)
    assert "This booking is already cancelled." in response.content.decode()


def test_a_withdrawn_virtual_account_is_not_shown_as_refunded(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation, method="vbank")
    services.payment_sync(imp_uid=checkout(fake_iamport, payment, outcome="vbank")["imp_uid"], source="callback")
    client.force_login(alice)
    client.post(reverse("reservations:release", args=[reservation.code]))
    payment.refresh_from_db()
    assert payment.status == "cancelled"
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert "Cancelled before payment" in page and "Refunded in full" not in page


@pytest.mark.parametrize("taken_meanwhile", [False, True])
def test_a_payment_heard_of_after_the_sweep_is_kept_if_its_seats_are_free(
    fake_iamport, alice, bob, performance, taken_meanwhile
):
    from reservations.services import holds_expire

    reservation = hold(alice, performance, A1, A2)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)  # paid in time; the news is late (a lost callback)
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert holds_expire() == 1  # the sweeper got there first and gave the seats back
    assert Reservation.objects.get(pk=reservation.pk).status == "expired"
    if taken_meanwhile:
        hold(bob, performance, A2)
    result = services.payment_sync(imp_uid=rsp["imp_uid"], source="reconcile")
    reservation.refresh_from_db()
    payment.refresh_from_db()
    if taken_meanwhile:  # refunded, as without the sweep
        assert result.outcome in ("refunded", "refund_owed")
        assert reservation.status == "expired"
        assert InventoryItem.objects.get(performance=performance, seat__label=A1).status == "available"
        assert payment.refunded_amount == payment.amount
    else:  # kept, as it would have been had the sweeper not run yet
        assert result.outcome == "paid"
        assert reservation.status == "confirmed"
        assert list(reservation.transitions.values_list("to_status", flat=True))[-2:] == ["expired", "confirmed"]
        items = InventoryItem.objects.filter(performance=performance, seat__label__in=[A1, A2])
        assert {(i.status, i.reservation_id) for i in items} == {("sold", reservation.pk)}


def test_closing_the_payment_window_goes_back_to_the_hold(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment, outcome="abandon")  # "결제창 닫기": I'mport keeps it "ready"
    assert rsp["imp_uid"] and rsp["error_msg"]
    client.force_login(alice)
    body = {"imp_uid": rsp["imp_uid"], "merchant_uid": payment.merchant_uid, "error_msg": rsp["error_msg"]}
    answer = client.post(reverse("payments:complete"), body, content_type="application/json").json()
    assert answer["ok"] is False
    assert answer["message"] == "The payment did not go through. You can try again while your seats are held."
    reservation.refresh_from_db()
    payment.refresh_from_db()
    assert reservation.status == "held"  # can change seats or pay again
    assert payment.status == "failed"
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert 'id="pay-form"' in page and "Change seats" in page
    # And paying again works.
    again = start(reservation)
    services.payment_sync(imp_uid=checkout(fake_iamport, again)["imp_uid"], source="callback")
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_a_browser_saying_failed_does_not_undo_a_payment_i_mport_has(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)  # paid at I'mport...
    client.force_login(alice)
    body = {"imp_uid": rsp["imp_uid"], "merchant_uid": payment.merchant_uid, "error_msg": "tampered"}
    answer = client.post(reverse("payments:complete"), body, content_type="application/json").json()
    assert answer["ok"] is True  # ...so the browser's word counts for nothing
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_closing_the_virtual_account_window_before_an_account_is_issued(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    payment = start(reservation, method="vbank")
    rsp = checkout(fake_iamport, payment, outcome="abandon")  # closed before the account was issued
    client.force_login(alice)
    body = {"imp_uid": rsp["imp_uid"], "merchant_uid": payment.merchant_uid, "error_msg": rsp["error_msg"]}
    answer = client.post(reverse("payments:complete"), body, content_type="application/json").json()
    assert answer["ok"] is False and "did not go through" in answer["message"]
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert payment.status == "failed" and not payment.vbank_num  # not "awaiting a deposit" into nothing
    assert reservation.status == "held"


def test_a_booking_says_until_when_it_can_be_cancelled(client, fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    client.force_login(alice)
    page = client.get(reservation.get_absolute_url()).content.decode()
    deadline = cancellation_deadline(Policy.from_dict(payment.refund_policy), performance.starts_at)
    assert f"Cancellation deadline: {timezone.localtime(deadline):%Y.%m.%d}" in page


def test_cancelling_after_a_partial_staff_refund_shows_and_sends_what_is_left(client, fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    services.payment_refund(payment=payment, amount=10000, reason="goodwill")
    client.force_login(alice)
    page = client.get(reverse("payments:cancel", args=[reservation.code])).content.decode()
    left = payment.amount - 10000
    assert "Refunded already" in page and f"Cancel and refund ₩{left:,}" in page
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    response = client.post(reverse("payments:cancel", args=[reservation.code]), {"token": token}, follow=True)
    assert f"Your booking is cancelled. ₩{left:,} will be refunded." in response.content.decode()
    payment.refresh_from_db()
    assert payment.refunded_amount == payment.amount and payment.status == "cancelled"


# --- Ticket types (discounts) chosen at checkout ---------------------------------


def _half_price(performance):
    from events.models import Discount

    return Discount.objects.create(event=performance.event, name="장애인 할인", percent_off=50)


def _choose_for_every_line(reservation, discount):
    from reservations.services import reservation_choose_discounts

    choices = {line.pk: discount.pk for line in reservation.lines.all()}
    return reservation_choose_discounts(reservation=reservation, choices=choices)


def test_a_discounted_booking_is_paid_and_refunded_at_its_discounted_price(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1, A2)
    _choose_for_every_line(reservation, _half_price(performance))
    reservation.refresh_from_db()
    assert reservation.total_amount == 2 * 60000 + 2 * 2000

    payment = start(reservation)
    assert payment.amount == 124000
    result = services.payment_sync(imp_uid=checkout(fake_iamport, payment)["imp_uid"], source="callback")
    assert result.outcome == "paid"

    reservation.refresh_from_db()
    quote = services.refund_preview(reservation=reservation)
    assert (quote.ticket_amount, quote.cancellation_fee) == (120000, 0)  # free within 7 days of booking
    services.booking_cancel(reservation=reservation, actor=alice)
    payment.refresh_from_db()
    assert payment.status == "cancelled" and payment.refunded_amount == 124000


def test_a_payment_opened_at_the_old_price_is_refunded_when_it_goes_through_later(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    left_open = start(reservation)  # a window left open in another tab
    closed = start(reservation)
    rsp = checkout(fake_iamport, closed, outcome="abandon")
    services.payment_window_failed(payment=closed, error_msg=rsp.get("error_msg", "closed"))
    reservation.refresh_from_db()
    assert reservation.status == "held"
    _choose_for_every_line(reservation, _half_price(performance))

    # The customer pays in the old window after all: 122,000 for a booking now at 62,000.
    result = services.payment_sync(imp_uid=checkout(fake_iamport, left_open)["imp_uid"], source="callback")

    assert "price of this booking changed" in result.message
    left_open.refresh_from_db()
    reservation.refresh_from_db()
    assert left_open.status == "cancelled" and left_open.refunded_amount == 122000
    assert reservation.status == "held"  # still theirs to pay at the new price
    new = start(reservation)
    assert new.amount == 62000
    assert services.payment_sync(imp_uid=checkout(fake_iamport, new)["imp_uid"], source="callback").outcome == "paid"
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"


def test_paying_from_a_tab_that_shows_the_old_total_is_refused_and_opens_nothing(fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    stale = Reservation.objects.get(pk=reservation.pk)  # the checkout page in a second tab
    _choose_for_every_line(reservation, _half_price(performance))

    with pytest.raises(services.PaymentError, match="total of this booking changed a moment ago"):
        start(stale)

    attempt = Payment.objects.get(reservation=reservation)
    assert (attempt.amount, attempt.status) == (122000, "failed")
    reservation.refresh_from_db()
    assert reservation.status == "held"
    assert start(reservation).amount == 62000


def test_a_tab_showing_an_old_total_does_not_open_the_payment_window(client, fake_iamport, alice, performance):
    reservation = hold(alice, performance, A1)
    client.force_login(alice)
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert 'name="shown_total" value="122000"' in page
    _choose_for_every_line(reservation, _half_price(performance))  # in another tab

    response = client.post(
        reverse("payments:pay", args=[reservation.code]), {**PAY_FORM, "shown_total": "122000"}, follow=True
    )

    assert "The total of this booking is now ₩62,000" in response.content.decode()
    assert not Payment.objects.exists()
    response = client.post(reverse("payments:pay", args=[reservation.code]), {**PAY_FORM, "shown_total": "62000"})
    assert response.context["params"]["amount"] == 62000


def test_a_virtual_account_issued_at_the_old_total_is_withdrawn_not_left_for_a_deposit(
    fake_iamport, alice, performance, django_capture_on_commit_callbacks
):
    reservation = hold(alice, performance, A1)
    left_open = start(reservation, method="vbank")  # a window left open in another tab
    closed = start(reservation, method="vbank")
    services.payment_window_failed(payment=closed, error_msg="closed")
    _choose_for_every_line(reservation, _half_price(performance))  # now 62,000

    rsp = checkout(fake_iamport, left_open, outcome="vbank")  # the account for 122,000 is issued after all
    with django_capture_on_commit_callbacks(execute=True):
        result = services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")

    assert "changed before this virtual account was issued" in result.message
    left_open.refresh_from_db()
    reservation.refresh_from_db()
    assert left_open.status == "cancelled"  # withdrawn at I'mport
    assert reservation.status == "held"  # the hold was not kept for the old total
    new = start(reservation, method="card")
    assert new.amount == 62000
    assert services.payment_sync(imp_uid=checkout(fake_iamport, new)["imp_uid"], source="callback").outcome == "paid"
