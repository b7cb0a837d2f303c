"""A virtual account left open for seats that are no longer the customer's to pay for
(let go, or paid another way) is withdrawn, so that no second payment can arrive."""

import pytest
from django.urls import reverse

from notifications.models import Notification
from payments import services
from payments.models import Payment
from payments.tests.test_flow import checkout, start
from payments.tests.test_performance_cancel import awaiting_deposit, deposit_refused, status_of
from reservations.tests.factories import hold, seat_items

pytestmark = pytest.mark.django_db

A1, A2 = (f"1층 A구역 A열 {n}번" for n in range(1, 3))


def test_a_withdrawal_refused_at_release_is_asked_again_on_the_next_click(client, fake_iamport, performance, alice):
    reservation, payment = awaiting_deposit(fake_iamport, alice, performance, A1)
    url = reverse("reservations:release", args=[reservation.code])
    client.force_login(alice)
    fake_iamport.add_fault(status=500, count=1, match="vbanks/")  # I'mport down for the first click
    client.post(url)
    assert status_of(reservation) == "released"
    payment.refresh_from_db()
    assert payment.status == "awaiting_deposit"
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert 'id="deposit-details"' not in page  # the seats are gone: no account to pay into
    response = client.post(url, follow=True)  # the form again, from another tab
    assert "These seats were already released." in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == "cancelled"
    assert deposit_refused(fake_iamport, payment)


def test_a_card_paying_while_an_account_is_open_withdraws_the_account(
    client, fake_iamport, performance, alice, django_capture_on_commit_callbacks
):
    # Two tabs: a virtual account was issued in one while the card window was open in
    # the other (both started before either finished).
    reservation = hold(alice, performance, A1)
    card, vbank = start(reservation), start(reservation, method="vbank")
    issued = checkout(fake_iamport, vbank, outcome="vbank")
    services.payment_sync(imp_uid=issued["imp_uid"], source="callback")
    paid = checkout(fake_iamport, card)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_sync(imp_uid=paid["imp_uid"], source="callback").outcome == "paid"
    assert status_of(reservation) == "confirmed"
    vbank.refresh_from_db()
    assert vbank.status == "cancelled"
    assert vbank.failure_reason == "The virtual account was withdrawn: the booking was paid another way."
    assert deposit_refused(fake_iamport, vbank)
    client.force_login(alice)
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert 'id="deposit-details"' not in page and "E-ticket" in page


def test_an_account_issued_after_the_card_paid_is_withdrawn_without_asking_for_a_deposit(
    fake_iamport, performance, alice, django_capture_on_commit_callbacks
):
    reservation = hold(alice, performance, A1)
    card, vbank = start(reservation), start(reservation, method="vbank")
    paid = checkout(fake_iamport, card)
    issued = checkout(fake_iamport, vbank, outcome="vbank")
    services.payment_sync(imp_uid=paid["imp_uid"], source="callback")
    with django_capture_on_commit_callbacks(execute=True):
        result = services.payment_sync(imp_uid=issued["imp_uid"], source="callback")
    assert result.outcome == "unchanged" and result.message == "This booking is already paid: no deposit is needed."
    vbank.refresh_from_db()
    assert vbank.status == "cancelled" and deposit_refused(fake_iamport, vbank)
    assert not Notification.objects.filter(kind=Notification.Kind.AWAITING_DEPOSIT).exists()
    assert status_of(reservation) == "confirmed"


def test_seats_with_an_open_account_are_not_changed_from_a_stale_page(client, fake_iamport, performance, alice):
    reservation, payment = awaiting_deposit(fake_iamport, alice, performance, A1)
    client.force_login(alice)
    (a2,) = seat_items(performance, A2)
    url = reverse("reservations:hold", args=[performance.event.slug, performance.pk])
    response = client.post(url, {"token": "t-change", "items": [a2.pk], "change": reservation.code})
    assert response.status_code == 400
    assert "A virtual account is waiting for this booking&#x27;s deposit." in response.content.decode()
    assert status_of(reservation) == "pending_payment"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.AWAITING_DEPOSIT


def test_my_bookings_show_the_deadline_of_a_hold_waiting_for_a_deposit(client, fake_iamport, performance, alice):
    # A card declined in one tab while an account was issued in another: the booking
    # is a hold again, kept until the account's deadline.
    reservation = hold(alice, performance, A1)
    card, vbank = start(reservation), start(reservation, method="vbank")
    services.payment_sync(imp_uid=checkout(fake_iamport, vbank, outcome="vbank")["imp_uid"], source="callback")
    services.payment_sync(imp_uid=checkout(fake_iamport, card, outcome="decline")["imp_uid"], source="callback")
    assert status_of(reservation) == "held"
    client.force_login(alice)
    page = client.get(reverse("reservations:list")).content.decode()
    row = page[page.index(reservation.code) :].split("</li>")[0]
    assert "Deposit by" in row and 'class="countdown"' not in row
    detail = client.get(reservation.get_absolute_url()).content.decode()
    assert 'id="deposit-details"' in detail and 'id="cancel-before-deposit"' in detail
    assert 'id="pay-form"' not in detail and "Change seats" not in detail


@pytest.mark.parametrize("let_go", ["released", "expired"])
def test_an_account_issued_after_the_seats_were_let_go_is_withdrawn_and_no_deposit_asked(
    fake_iamport, performance, alice, let_go, django_capture_on_commit_callbacks
):
    import datetime as dt

    from django.utils import timezone

    from reservations.models import Reservation

    reservation = hold(alice, performance, A1)
    vbank = start(reservation, method="vbank")  # the window is open...
    if let_go == "released":  # ...while the customer lets the seats go in another tab
        services.hold_release(reservation=reservation, actor=alice, reason="released by customer")
    else:  # ...or the hold's time runs out
        Reservation.objects.filter(pk=reservation.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    issued = checkout(fake_iamport, vbank, outcome="vbank")
    with django_capture_on_commit_callbacks(execute=True):
        result = services.payment_sync(imp_uid=issued["imp_uid"], source="callback")
    assert result.outcome == "unchanged" and "no deposit is needed" in result.message
    vbank.refresh_from_db()
    assert vbank.status == "cancelled" and deposit_refused(fake_iamport, vbank)
    assert not Notification.objects.filter(kind=Notification.Kind.AWAITING_DEPOSIT).exists()
    assert Reservation.objects.get(pk=reservation.pk).status in ("released", "expired", "pending_payment")


def test_staff_see_a_withdrawn_account_as_cancelled_before_payment(admin_client, fake_iamport, performance, alice):
    reservation, payment = awaiting_deposit(fake_iamport, alice, performance, A1)
    services.hold_release(reservation=reservation, actor=alice, reason="released by customer")
    payment.refresh_from_db()
    assert payment.status == "cancelled"
    listing = admin_client.get(reverse("admin:payments_payment_changelist")).content.decode()
    (row,) = [row.split("</tr>")[0] for row in listing.split("<tr")[1:] if payment.merchant_uid in row]
    assert "Cancelled before payment" in row and "Refunded in full" not in row
    page = admin_client.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()
    assert "Cancelled before payment" in page
