"""Staff call a performance off: sales and payments stop, holds are let go, and every
booking is refunded in full, through the real client against the fake I'mport."""

import datetime as dt

import pytest
import requests
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from events.models import Performance
from events.tests.factories import UserFactory
from payments import services
from payments.models import Payment
from payments.tests.test_flow import checkout, paid_booking, start
from reservations.models import InventoryItem, Reservation
from reservations.tests.factories import hold

pytestmark = pytest.mark.django_db

A1, A2, A3, A4 = (f"1층 A구역 A열 {n}번" for n in range(1, 5))
B1 = "1층 A구역 B열 1번"


@pytest.fixture
def staff_user():
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def sold_performance(fake_iamport, performance):
    """A performance with one of everything: a hold, a card window open, a card booking,
    a virtual account booking and a booking the customer cancelled already."""
    card_customer = UserFactory(preferred_language="en")
    card, card_payment = paid_booking(fake_iamport, card_customer, performance, A1, A2)
    vbank, vbank_payment = paid_booking(fake_iamport, UserFactory(), performance, A3, method="vbank")
    gone, _ = paid_booking(fake_iamport, UserFactory(), performance, B1)
    services.booking_cancel(reservation=gone, actor=gone.user)
    paying = hold(UserFactory(), performance, "1층 A구역 C열 1번")
    paying_payment = start(paying)
    held = hold(UserFactory(), performance, A4)
    return {
        "card": (card, card_payment),
        "vbank": (vbank, vbank_payment),
        "gone": gone,
        "paying": (paying, paying_payment),
        "held": held,
    }


def status_of(reservation):
    return Reservation.objects.get(pk=reservation.pk).status


def test_cancelling_releases_holds_and_refunds_every_booking_in_full(
    fake_iamport, performance, sold_performance, staff_user, mailoutbox, django_capture_on_commit_callbacks
):
    card, card_payment = sold_performance["card"]
    vbank, vbank_payment = sold_performance["vbank"]
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        summary = services.performance_cancel(performance=performance, actor=staff_user)

    assert Performance.objects.get(pk=performance.pk).status == "cancelled"
    assert (summary.holds_released, summary.refunds_queued, summary.waiting_for_account) == (2, 1, 1)
    assert summary.refund_total == card_payment.amount
    for key in ("held", "paying"):
        reservation = sold_performance[key] if key == "held" else sold_performance[key][0]
        assert status_of(reservation) == "released"
        assert reservation.transitions.last().reason == "performance cancelled"
    # The card booking: tickets and booking fee back, whatever the policy says.
    card_payment.refresh_from_db()
    assert card_payment.status == "cancelled" and card_payment.refunded_amount == card_payment.amount
    assert card.fee_amount > 0 and card_payment.amount == card.total_amount
    assert status_of(card) == "cancelled"
    assert card.transitions.last().actor == staff_user
    card_email, vbank_email = sorted(mailoutbox, key=lambda m: m.to != [card.user.email])
    assert card_email.to == [card.user.email]
    assert "The organiser has cancelled this performance" in card_email.body
    assert "₩244,000" in card_email.body
    # The virtual account customer is asked for the account to refund to.
    assert vbank_email.to == [vbank.user.email]
    assert vbank.get_absolute_url() in vbank_email.body
    # The virtual account waits for the customer's refund account.
    assert status_of(vbank) == "confirmed"
    vbank_payment.refresh_from_db()
    assert vbank_payment.refunded_amount == 0
    # Nothing of this performance is held or sold any more, except the virtual account's seat.
    sold = InventoryItem.objects.filter(performance=performance, status__in=["held", "sold"])
    assert list(sold.values_list("reservation", flat=True)) == [vbank.pk]

    # Run again (a second click, or staff saving the form): nothing twice.
    with django_capture_on_commit_callbacks(execute=True):
        again = services.performance_cancel(performance=performance, actor=staff_user)
    assert (again.holds_released, again.refunds_queued, again.waiting_for_account) == (0, 0, 1)
    card_payment.refresh_from_db()
    assert card_payment.refunded_amount == card_payment.amount
    assert len(mailoutbox) == 2


def test_a_virtual_account_customer_cancels_for_a_full_refund(
    client, fake_iamport, performance, sold_performance, staff_user, django_capture_on_commit_callbacks
):
    vbank, vbank_payment = sold_performance["vbank"]
    with django_capture_on_commit_callbacks(execute=True):
        services.performance_cancel(performance=performance, actor=staff_user)
    client.force_login(vbank.user)
    page = client.get(vbank.get_absolute_url()).content.decode()
    assert "This performance has been cancelled, and everything you paid is refunded." in page
    assert "name the bank account to refund to" in page
    listed = client.get(reverse("reservations:list")).content.decode()
    assert "Performance cancelled: refund due" in listed
    quote = services.refund_preview(reservation=vbank)
    assert quote.allowed and quote.cancellation_fee == 0 and quote.total_refund == vbank.total_amount
    # Even after the date, when the policy would say no.
    late = services.refund_preview(reservation=vbank, now=performance.starts_at + dt.timedelta(days=1))
    assert late.allowed and late.total_refund == vbank.total_amount
    services.booking_cancel(
        reservation=vbank, actor=vbank.user, refund_holder="홍길동", refund_bank="004", refund_account="12345678901"
    )
    vbank_payment.refresh_from_db()
    assert vbank_payment.refunded_amount == vbank_payment.amount
    assert status_of(vbank) == "cancelled"


def test_a_booking_nothing_was_paid_for_is_cancelled_too(
    performance, alice, staff_user, django_capture_on_commit_callbacks
):
    from reservations.services import reservation_confirm

    free = reservation_confirm(reservation=hold(alice, performance, A1))  # issued without a payment
    summary = services.performance_cancel(performance=performance, actor=staff_user)  # its task lost
    assert (summary.refunds_queued, summary.refund_total) == (1, 0)
    assert status_of(free) == "confirmed"
    services.payments_reconcile()  # finishes it
    assert status_of(free) == "cancelled"
    assert InventoryItem.objects.get(performance=performance, seat__label=A1).status == "available"


def test_a_refund_i_mport_does_not_answer_is_finished_by_reconciliation(
    fake_iamport, performance, alice, staff_user, settings, django_capture_on_commit_callbacks
):
    booking, payment = paid_booking(fake_iamport, alice, performance, A1)
    good_url = settings.IAMPORT_API_URL
    settings.IAMPORT_API_URL = "http://127.0.0.1:9/"  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        summary = services.performance_cancel(performance=performance, actor=staff_user)
    assert summary.refunds_queued == 1
    with pytest.raises(services.RefundNotSent):  # what the task retries on
        services.booking_refund_cancelled_performance(reservation_id=booking.pk)
    assert status_of(booking) == "confirmed"  # nothing refunded, nothing cancelled
    payment.refresh_from_db()
    assert payment.status == "paid" and payment.refunded_amount == 0

    settings.IAMPORT_API_URL = good_url
    services.payments_reconcile(older_than=dt.timedelta(0))
    payment.refresh_from_db()
    assert payment.status == "cancelled" and payment.refunded_amount == payment.amount
    assert status_of(booking) == "cancelled"
    services.payments_reconcile(older_than=dt.timedelta(0))  # and only once
    payment.refresh_from_db()
    assert payment.refunded_amount == payment.amount


def test_a_refund_whose_answer_was_lost_is_recorded_not_made_twice(
    fake_iamport, performance, alice, staff_user, settings, mailoutbox, django_capture_on_commit_callbacks
):
    import time

    booking, payment = paid_booking(fake_iamport, alice, performance, A1)
    services.performance_cancel(performance=performance, actor=staff_user)  # its task is not run here
    settings.IAMPORT_READ_TIMEOUT = 0.3
    fake_iamport.set_stall(1, count=1, match="/payments/cancel")  # refunds, but answers too late
    with pytest.raises(services.RefundNotSent, match="could not be confirmed"):
        services.booking_refund_cancelled_performance(reservation_id=booking.pk)
    time.sleep(0.9)  # the stalled refund goes through at I'mport meanwhile
    mailoutbox.clear()

    # The retry's refund is refused (nothing is left), and I'mport shows the first one.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.booking_refund_cancelled_performance(reservation_id=booking.pk)

    payment.refresh_from_db()
    assert payment.status == "cancelled" and payment.refunded_amount == payment.amount
    assert status_of(booking) == "cancelled"
    assert len(mailoutbox) == 1 and "주최 측 사정으로 공연 회차가 취소되어" in mailoutbox[0].body  # in her language
    remote = services.get_gateway().find(imp_uid=payment.imp_uid)
    assert remote.cancel_amount == payment.amount  # refunded once, though asked twice
    assert len(fake_iamport.requests_to("/payments/cancel")) == 2


def test_a_payment_completed_after_the_cancellation_is_refunded(
    fake_iamport, performance, alice, staff_user, django_capture_on_commit_callbacks
):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)  # the card window is open when staff cancel
    with django_capture_on_commit_callbacks(execute=True):
        services.performance_cancel(performance=performance, actor=staff_user)
    rsp = checkout(fake_iamport, payment)
    result = services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    assert result.message == "This performance has been cancelled. Your payment is being refunded in full."
    payment.refresh_from_db()
    assert payment.status == "cancelled" and payment.refunded_amount == payment.amount
    assert status_of(reservation) == "released"


def awaiting_deposit(fake_iamport, user, performance, label):
    """A hold whose virtual account is issued and waits for the customer's deposit."""
    reservation = hold(user, performance, label)
    payment = start(reservation, method="vbank")
    rsp = checkout(fake_iamport, payment, outcome="vbank")
    assert services.payment_sync(imp_uid=rsp["imp_uid"], source="callback").outcome == "awaiting_deposit"
    payment.refresh_from_db()
    return reservation, payment


def deposit_refused(fake_iamport, payment) -> bool:
    response = requests.post(fake_iamport.url + "__fake__/vbank/deposit", json={"imp_uid": payment.imp_uid}, timeout=10)
    return response.status_code != 200


def test_an_open_virtual_account_is_withdrawn_with_its_hold(
    fake_iamport, performance, alice, staff_user, django_capture_on_commit_callbacks
):
    reservation, payment = awaiting_deposit(fake_iamport, alice, performance, A1)
    with django_capture_on_commit_callbacks(execute=True):
        summary = services.performance_cancel(performance=performance, actor=staff_user)
    assert summary.holds_released == 1
    assert status_of(reservation) == "released"
    payment.refresh_from_db()
    assert payment.status == "cancelled" and payment.refunded_amount == 0
    assert payment.failure_reason == "The virtual account was withdrawn: the seats were released."
    assert deposit_refused(fake_iamport, payment)  # the bank no longer takes money for it


def test_staff_releasing_a_hold_withdraw_its_virtual_account(client, fake_iamport, performance, alice, staff_user):
    reservation, payment = awaiting_deposit(fake_iamport, alice, performance, A1)
    client.force_login(staff_user)
    client.post(
        reverse("admin:reservations_reservation_changelist"),
        {"action": "release_holds", "_selected_action": [reservation.pk]},
    )
    assert status_of(reservation) == "released"
    payment.refresh_from_db()
    assert payment.status == "cancelled"
    assert deposit_refused(fake_iamport, payment)


def test_a_customer_cancelling_before_the_deposit_closes_the_account(client, fake_iamport, performance, alice, bob):
    reservation, payment = awaiting_deposit(fake_iamport, alice, performance, A1)
    url = reverse("reservations:release", args=[reservation.code])
    client.force_login(bob)
    assert client.post(url).status_code == 404
    client.force_login(alice)
    page = client.get(reservation.get_absolute_url()).content.decode()
    assert 'id="cancel-before-deposit"' in page and "Release these seats" not in page
    response = client.post(url, follow=True)
    assert "Your seats have been released." in response.content.decode()
    assert status_of(reservation) == "released"
    assert reservation.transitions.last().actor == alice
    payment.refresh_from_db()
    assert payment.status == "cancelled"
    assert deposit_refused(fake_iamport, payment)  # no money can be sent for seats given back
    assert InventoryItem.objects.get(performance=performance, seat__label=A1).status == "available"


def test_my_bookings_count_down_a_started_payment_and_show_a_deposit_deadline(client, fake_iamport, performance, alice):
    card = hold(alice, performance, A2)
    start(card)  # the card window was opened, then left: still a live hold
    vbank, payment = awaiting_deposit(fake_iamport, alice, performance, A1)
    client.force_login(alice)
    for url in (reverse("reservations:list"), reverse("accounts:my_page")):
        page = client.get(url).content.decode()
        rows = {code: page[page.index(code) :].split("</li>")[0] for code in (card.code, vbank.code)}
        assert 'class="countdown"' in rows[card.code], url
        assert 'class="countdown"' not in rows[vbank.code], url  # kept until the deadline
        assert f"Deposit by {timezone.localtime(payment.vbank_due):%Y.%m.%d}" in rows[vbank.code], url
        assert "countdown.js" in page


def test_a_withdrawal_i_mport_refuses_still_releases_the_hold(fake_iamport, performance, alice, staff_user):
    reservation, payment = awaiting_deposit(fake_iamport, alice, performance, A1)
    fake_iamport.add_fault(status=500, count=3, match="vbanks/")
    services.hold_release(reservation=reservation, actor=staff_user, reason="released by staff")
    assert status_of(reservation) == "released"
    payment.refresh_from_db()
    assert payment.status == "awaiting_deposit"  # left as I'mport has it; a deposit would be refunded
    assert payment.events.filter(kind="vbank_revoke_failed").exists()


def changelist():
    return reverse("admin:events_performance_changelist")


def test_the_admin_action_asks_first_then_cancels(
    client, fake_iamport, performance, sold_performance, staff_user, django_capture_on_commit_callbacks
):
    client.force_login(staff_user)
    ask = client.post(changelist(), {"action": "cancel_and_refund", "_selected_action": [performance.pk]})
    page = " ".join(ask.content.decode().split())
    assert ask.status_code == 200 and "This cannot be undone." in page
    card, card_payment = sold_performance["card"]
    # 2 live holds, the card booking refunded now for what it was paid, 1 by virtual account.
    assert f"<td>{performance}</td><td>2</td><td>1</td><td>₩{card_payment.amount:,}</td><td>1</td>" in page
    assert Performance.objects.get(pk=performance.pk).status != "cancelled"  # nothing yet

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            changelist(),
            {"action": "cancel_and_refund", "_selected_action": [performance.pk], "confirmed": "yes"},
            follow=True,
        )
    page = done.content.decode()
    assert f"is cancelled: 2 holds released, 1 booking being refunded (₩{card_payment.amount:,})." in page
    assert "1 booking was paid by virtual account" in page
    assert Performance.objects.get(pk=performance.pk).status == "cancelled"
    assert status_of(card) == "cancelled"


def change_form_data(client, performance, **changes):
    url = reverse("admin:events_performance_change", args=[performance.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    for name in ("starts_at", "sales_open_at", "sales_close_at"):
        local = timezone.localtime(getattr(performance, name))
        data[f"{name}_0"], data[f"{name}_1"] = f"{local:%Y-%m-%d}", f"{local:%H:%M:%S}"
        data.pop(name, None)
    return url, {**data, **changes}


def test_the_change_form_sends_staff_to_the_action_to_cancel(client, fake_iamport, performance, alice, staff_user):
    booking, _ = paid_booking(fake_iamport, alice, performance, A1)
    client.force_login(staff_user)
    url, data = change_form_data(client, performance, status="cancelled")
    response = client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert "use “Cancel and refund every booking” on the list of performances" in response.content.decode()
    assert Performance.objects.get(pk=performance.pk).status != "cancelled"
    assert status_of(booking) == "confirmed"


def test_a_cancelled_performance_cannot_go_back_on_sale(client, performance, staff_user):
    Performance.objects.filter(pk=performance.pk).update(status=Performance.Status.CANCELLED)
    performance.refresh_from_db()
    client.force_login(staff_user)
    url, data = change_form_data(client, performance, status="on_sale")
    response = client.post(url, data)
    assert "cannot be put back on sale" in response.content.decode()
    assert Performance.objects.get(pk=performance.pk).status == "cancelled"


@pytest.mark.parametrize("may", [["view_performance"], ["view_performance", "change_performance"]])
def test_staff_who_may_not_refund_cannot_cancel(client, performance, fake_iamport, alice, may):
    booking, _ = paid_booking(fake_iamport, alice, performance, A1)
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=may))
    client.force_login(staff)
    page = client.get(changelist()).content.decode()
    assert 'value="cancel_and_refund"' not in page  # not offered
    response = client.post(
        changelist(), {"action": "cancel_and_refund", "_selected_action": [performance.pk], "confirmed": "yes"}
    )
    assert response.status_code in (200, 302, 403)
    assert Performance.objects.get(pk=performance.pk).status != "cancelled"
    assert status_of(booking) == "confirmed"
    assert Payment.objects.get(reservation=booking).refunded_amount == 0


def test_staff_who_may_change_performances_and_payments_can_cancel(client, performance, fake_iamport, alice):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_performance", "change_performance", "change_payment"])
    )
    client.force_login(staff)
    assert 'value="cancel_and_refund"' in client.get(changelist()).content.decode()
