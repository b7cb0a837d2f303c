"""Cancelling some tickets of a booking and keeping the rest (부분 취소): the policy's
refund of those tickets through the real client and the fake I'mport, their places back
on sale, the booking's amounts of what is left."""

import datetime as dt

import pytest
from django.urls import reverse

from events.tests.factories import UserFactory
from notifications.models import Notification
from payments import services
from payments.models import Payment
from payments.tests.test_flow import paid_booking
from reservations.models import CancelledTicket, InventoryItem, Reservation
from reservations.tests.factories import hold, seat_items
from ticketing.testing import race

pytestmark = pytest.mark.django_db

A1, A2, A3 = (f"1층 A구역 A열 {n}번" for n in range(1, 4))


def line_of(reservation, label):
    return reservation.lines.get(label=label)


def remote(payment):
    return services.get_gateway().find(imp_uid=payment.imp_uid)


def test_one_ticket_of_three_is_refunded_with_its_booking_fee_and_put_back_on_sale(
    fake_iamport, alice, bob, performance
):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2, A3)
    a2 = line_of(reservation, A2)

    quote = services.booking_cancel_tickets(reservation=reservation, line_ids=[a2.pk], actor=alice)

    assert quote.total_refund == 120000 + 2000  # booked today: the ticket and its booking fee
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == ("paid", 122000)
    assert remote(payment).cancel_amount == 122000
    assert reservation.status == "confirmed"
    assert [line.label for line in reservation.lines.all()] == [A1, A3]
    assert (reservation.ticket_amount, reservation.fee_amount, reservation.total_amount) == (240000, 4000, 244000)
    (receipt,) = CancelledTicket.objects.filter(reservation=reservation)
    assert (receipt.label, receipt.price, receipt.actor) == (A2, 120000, alice)
    (seat,) = seat_items(performance, A2)
    seat.refresh_from_db()
    assert (seat.status, seat.reservation_id) == ("available", None)
    assert hold(bob, performance, A2).status == "held"  # on sale again
    email = Notification.objects.get(kind=Notification.Kind.REFUNDED, reservation=reservation)
    assert email.context["refund"] == 122000
    assert "You cancelled 1 ticket: 1층 A구역 A열 2번. The rest of your booking stands." in email.context["reason"]


def test_the_policys_fee_is_of_the_cancelled_tickets_only_and_the_rest_cancels_later(fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    starts = reservation.performance.starts_at
    # Booked a month ago, cancelled 8 days before: 10% of the ticket, no booking fee.
    Reservation.objects.filter(pk=reservation.pk).update(confirmed_at=starts - dt.timedelta(days=30))
    reservation.refresh_from_db()
    now = starts - dt.timedelta(days=8)

    preview = services.refund_preview(reservation=reservation, now=now, line_ids=[line_of(reservation, A1).pk])
    assert (preview.ticket_amount, preview.booking_fee, preview.cancellation_fee) == (120000, 2000, 12000)
    services.booking_cancel_tickets(
        reservation=reservation, line_ids=[line_of(reservation, A1).pk], actor=alice, now=now
    )
    payment.refresh_from_db()
    assert payment.refunded_amount == 108000

    reservation.refresh_from_db()
    rest = services.booking_cancel(reservation=reservation, actor=alice, now=now)
    assert rest.total_refund == 108000  # the other ticket, by the same rule
    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert (payment.refunded_amount, reservation.status) == (216000, "cancelled")
    assert remote(payment).cancel_amount == 216000


def test_choosing_every_ticket_cancels_the_booking(fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    every = [line.pk for line in reservation.lines.all()]
    services.booking_cancel_tickets(reservation=reservation, line_ids=every, actor=alice)
    reservation.refresh_from_db()
    payment.refresh_from_db()
    assert reservation.status == "cancelled"
    assert (payment.status, payment.refunded_amount) == ("cancelled", 244000)
    assert not CancelledTicket.objects.exists()


@pytest.mark.parametrize("which", ["another booking's", "none"])
def test_tickets_not_on_the_booking_are_refused_and_nothing_moves(fake_iamport, alice, bob, performance, which):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    other, _ = paid_booking(fake_iamport, bob, performance, A3)
    line_ids = [line_of(other, A3).pk] if which == "another booking's" else []
    with pytest.raises(services.PaymentError, match="not on this booking"):
        services.booking_cancel_tickets(reservation=reservation, line_ids=line_ids, actor=alice)
    payment.refresh_from_db()
    assert payment.refunded_amount == 0 and remote(payment).cancel_amount == 0
    assert reservation.lines.count() == 2 and other.lines.count() == 1


def test_a_refund_iamport_does_not_answer_changes_nothing(fake_iamport, alice, performance, monkeypatch):
    from payments.gateway import Gateway, GatewayUnavailable

    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)

    def times_out(self, **kwargs):
        raise GatewayUnavailable("connection refused")

    monkeypatch.setattr(Gateway, "cancel", times_out)
    with pytest.raises(services.RefundNotSent):
        services.booking_cancel_tickets(reservation=reservation, line_ids=[line_of(reservation, A2).pk], actor=alice)
    payment.refresh_from_db()
    assert payment.refunded_amount == 0
    assert reservation.lines.count() == 2 and not CancelledTicket.objects.exists()
    assert set(InventoryItem.objects.filter(reservation=reservation).values_list("status", flat=True)) == {"sold"}


def test_a_refund_whose_answer_is_lost_still_cancels_its_tickets(fake_iamport, alice, performance, monkeypatch):
    from payments.gateway import Gateway, GatewayUnavailable

    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    real_cancel = Gateway.cancel

    def refunds_then_times_out(self, **kwargs):
        real_cancel(self, **kwargs)  # I'mport refunds...
        raise GatewayUnavailable("read timed out")  # ...and the answer never arrives

    monkeypatch.setattr(Gateway, "cancel", refunds_then_times_out)
    services.booking_cancel_tickets(reservation=reservation, line_ids=[line_of(reservation, A2).pk], actor=alice)

    payment.refresh_from_db()
    assert payment.refunded_amount == 122000
    assert [line.label for line in reservation.lines.all()] == [A1]  # not a free ticket left behind


def test_the_same_ticket_cancelled_twice_one_after_the_other_is_refunded_once(fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2, A3)
    a2 = line_of(reservation, A2)
    services.booking_cancel_tickets(reservation=reservation, line_ids=[a2.pk], actor=alice)
    with pytest.raises(services.PaymentError, match="not on this booking"):
        services.booking_cancel_tickets(reservation=reservation, line_ids=[a2.pk], actor=alice)
    assert remote(payment).cancel_amount == 122000


# --- The cancel page ----------------------------------------------------------------


def test_the_cancel_page_previews_the_ticked_tickets_and_cancels_them(client, fake_iamport, alice, performance):
    reservation, _payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    a1 = line_of(reservation, A1)
    client.force_login(alice)
    url = reverse("payments:cancel", args=[reservation.code])

    page = client.get(url).content.decode()
    assert page.count('name="tickets"') == 2 and "Cancel and refund ₩244,000" in page
    page = client.get(url, {"tickets": [a1.pk]}).content.decode()
    assert "Cancel 1 ticket and refund ₩122,000" in page

    token = client.get(url).context["form"]["token"].initial
    response = client.post(url, {"token": token, "tickets": [a1.pk]}, follow=True)

    assert (
        "1 ticket cancelled: ₩122,000 will be refunded. The rest of your booking stands." in response.content.decode()
    )
    assert 'id="cancelled-tickets"' in response.content.decode()
    reservation.refresh_from_db()
    assert [line.label for line in reservation.lines.all()] == [A2]


def test_the_cancel_page_refuses_tickets_of_another_booking(client, fake_iamport, alice, bob, performance):
    reservation, _ = paid_booking(fake_iamport, alice, performance, A1, A2)
    other, _ = paid_booking(fake_iamport, bob, performance, A3)
    client.force_login(alice)
    url = reverse("payments:cancel", args=[reservation.code])
    response = client.get(url, {"tickets": [line_of(other, A3).pk]}, follow=True)
    assert "Choose at least one ticket of this booking to cancel." in response.content.decode()
    token = client.get(url).context["form"]["token"].initial
    client.post(url, {"token": token, "tickets": ["x"]})
    assert reservation.lines.count() == 2 and other.lines.count() == 1


def test_cancelling_tickets_belongs_to_the_booking_owner(client, fake_iamport, alice, bob, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    url = reverse("payments:cancel", args=[reservation.code])
    data = {"token": "x", "tickets": [line_of(reservation, A1).pk]}
    anonymous = client.post(url, data)
    assert anonymous.status_code == 302 and reverse("account_login") in anonymous["Location"]
    client.force_login(bob)
    assert client.get(url).status_code == 404
    assert client.post(url, data).status_code == 404
    assert reservation.lines.count() == 2
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 0


# --- At the same instant (SQLite and MariaDB) -----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_same_ticket_cancelled_from_two_windows_at_once_is_refunded_once(fake_iamport, performance):
    customer = UserFactory()
    reservation, payment = paid_booking(fake_iamport, customer, performance, A1, A2, A3)
    a2 = line_of(reservation, A2).pk

    def cancel(i):
        booking = Reservation.objects.get(pk=reservation.pk)
        return services.booking_cancel_tickets(reservation=booking, line_ids=[a2], actor=customer)

    fake_iamport.set_stall(0.3)  # both refunds in flight together
    try:
        results = race(cancel, 2)
    finally:
        fake_iamport.set_stall(0)

    refused = [r for r in results if isinstance(r, services.PaymentError)]
    assert len(refused) == 1, results
    assert remote(payment).cancel_amount == 122000
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 122000
    assert CancelledTicket.objects.filter(reservation=reservation).count() == 1
    assert sorted(line.label for line in Reservation.objects.get(pk=reservation.pk).lines.all()) == [A1, A3]


# --- A refund I'mport made whose answer was lost, found by a later sync -----------------


def _refund_answer_lost_and_lookup_down(monkeypatch):
    """I'mport refunds, its answer never arrives, and the lookup right after fails too."""
    from payments.gateway import Gateway, GatewayUnavailable

    real_cancel, real_find = Gateway.cancel, Gateway.find
    down = {"find": True}

    def refunds_then_times_out(self, **kwargs):
        real_cancel(self, **kwargs)
        raise GatewayUnavailable("read timed out")

    def find(self, **kwargs):
        if down["find"]:
            raise GatewayUnavailable("connection refused")
        return real_find(self, **kwargs)

    monkeypatch.setattr(Gateway, "cancel", refunds_then_times_out)
    monkeypatch.setattr(Gateway, "find", find)
    return down


@pytest.mark.parametrize("some", [True, False], ids=["some tickets", "the booking"])
def test_a_cancellation_whose_refund_answer_was_lost_is_finished_by_the_next_sync(
    fake_iamport, alice, performance, monkeypatch, some
):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    starts = reservation.performance.starts_at
    Reservation.objects.filter(pk=reservation.pk).update(confirmed_at=starts - dt.timedelta(days=30))
    reservation.refresh_from_db()
    now = starts - dt.timedelta(days=8)  # a 10% fee: I'mport keeps part, so the payment stays "paid"
    down = _refund_answer_lost_and_lookup_down(monkeypatch)
    a2 = line_of(reservation, A2).pk
    with pytest.raises(services.RefundNotSent):
        if some:
            services.booking_cancel_tickets(reservation=reservation, line_ids=[a2], actor=alice, now=now)
        else:
            services.booking_cancel(reservation=reservation, actor=alice, now=now)
    down["find"] = False
    refunded = remote(payment).cancel_amount  # I'mport did refund
    assert refunded == (108000 if some else 216000)

    services.payment_sync(imp_uid=payment.imp_uid, source="reconcile")  # I'mport answers again

    payment.refresh_from_db()
    reservation.refresh_from_db()
    assert payment.refunded_amount == refunded
    if some:
        assert reservation.status == "confirmed" and [line.label for line in reservation.lines.all()] == [A1]
        assert CancelledTicket.objects.get(reservation=reservation).label == A2
    else:
        assert reservation.status == "cancelled"
    assert payment.events.filter(kind="cancel_finished").count() == 1
    # Cancelling "again" cannot refund the same tickets twice.
    with pytest.raises(services.PaymentError):
        if some:
            services.booking_cancel_tickets(reservation=reservation, line_ids=[a2], actor=alice, now=now)
        else:
            services.booking_cancel(reservation=reservation, actor=alice, now=now)
    services.payment_sync(imp_uid=payment.imp_uid, source="reconcile")  # and syncing again changes nothing
    assert remote(payment).cancel_amount == refunded
    assert Payment.objects.get(pk=payment.pk).events.filter(kind="cancel_finished").count() == 1


def test_a_refund_made_elsewhere_found_later_cancels_nothing(fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    # Refunded in I'mport's console, say: no attempt of ours asked for it.
    services.get_gateway().cancel(imp_uid=payment.imp_uid, reason="console", amount=5000, checksum=244000)

    services.payment_sync(imp_uid=payment.imp_uid, source="reconcile")

    reservation.refresh_from_db()
    assert reservation.status == "confirmed" and reservation.lines.count() == 2
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 5000


def test_after_a_large_staff_refund_the_customer_is_told_to_cancel_the_whole_booking(fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    services.payment_refund(payment=payment, amount=130000, reason="compensation")
    with pytest.raises(services.PaymentError, match="Cancel the whole booking, or contact us"):
        services.booking_cancel_tickets(reservation=reservation, line_ids=[line_of(reservation, A1).pk], actor=alice)
    assert reservation.lines.count() == 2
    assert remote(payment).cancel_amount == 130000


def test_a_ticket_used_at_the_entrance_cannot_be_cancelled(fake_iamport, alice, performance):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    reservation.lines.filter(label=A1).update(admitted_at=reservation.confirmed_at)
    with pytest.raises(services.PaymentError, match="already used at the entrance"):
        services.booking_cancel_tickets(reservation=reservation, line_ids=[line_of(reservation, A1).pk], actor=alice)
    assert reservation.lines.count() == 2
    assert remote(payment).cancel_amount == 0


def test_unticking_every_box_without_javascript_asks_for_a_ticket(client, fake_iamport, alice, performance):
    reservation, _payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    client.force_login(alice)
    url = reverse("payments:cancel", args=[reservation.code])
    response = client.get(url, {"choose": "1"}, follow=True)  # the boxes' form, none ticked
    assert "Choose at least one ticket of this booking to cancel." in response.content.decode()


def test_a_refund_whose_request_died_before_recording_it_is_finished_by_reconciliation(
    fake_iamport, alice, performance, monkeypatch
):
    from django.db import DatabaseError

    from reservations import services as reservation_services

    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    real = reservation_services.reservation_cancel_tickets

    def dies(**kwargs):
        raise DatabaseError("deadlock found when trying to get lock")

    monkeypatch.setattr(reservation_services, "reservation_cancel_tickets", dies)
    with pytest.raises(services.PaymentError, match="could not finish cancelling"):
        services.booking_cancel_tickets(reservation=reservation, line_ids=[line_of(reservation, A2).pk], actor=alice)
    assert remote(payment).cancel_amount == 122000  # the money went
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 0  # and was not recorded
    monkeypatch.setattr(reservation_services, "reservation_cancel_tickets", real)

    services.payments_reconcile(older_than=dt.timedelta(0))

    payment.refresh_from_db()
    assert payment.refunded_amount == 122000
    assert [line.label for line in reservation.lines.all()] == [A1]
    services.payments_reconcile(older_than=dt.timedelta(0))  # once is all
    assert payment.events.filter(kind="cancel_finished").count() == 1


def test_reconciliation_closes_a_cancellation_refund_that_was_never_made(fake_iamport, alice, performance, monkeypatch):
    from payments.gateway import Gateway, GatewayUnavailable

    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)

    def refused_at_the_door(self, **kwargs):
        raise GatewayUnavailable("connection refused")

    monkeypatch.setattr(Gateway, "cancel", refused_at_the_door)
    with pytest.raises(services.RefundNotSent):
        services.booking_cancel_tickets(reservation=reservation, line_ids=[line_of(reservation, A2).pk], actor=alice)
    monkeypatch.undo()

    services.payments_reconcile(older_than=dt.timedelta(0))

    assert reservation.lines.count() == 2  # nothing was refunded, so nothing is cancelled
    assert payment.events.filter(kind="refund_not_made").count() == 1
    services.payments_reconcile(older_than=dt.timedelta(0))
    assert payment.events.filter(kind="refund_not_made").count() == 1  # looked at once


def test_a_retry_refused_because_the_first_refund_went_through_finishes_the_first(
    fake_iamport, alice, performance, monkeypatch
):
    from django.db import DatabaseError

    from reservations import services as reservation_services

    reservation, payment = paid_booking(fake_iamport, alice, performance, A1, A2)
    real = reservation_services.reservation_cancel_tickets

    def dies(**kwargs):
        raise DatabaseError("the request died here")

    monkeypatch.setattr(reservation_services, "reservation_cancel_tickets", dies)
    a2 = line_of(reservation, A2).pk
    with pytest.raises(services.PaymentError):
        services.booking_cancel_tickets(reservation=reservation, line_ids=[a2], actor=alice)
    monkeypatch.setattr(reservation_services, "reservation_cancel_tickets", real)

    # The customer tries again at once: I'mport refuses (its balance moved), which
    # records the first refund and finishes what it was for.
    with pytest.raises(services.PaymentError, match="changed at the same moment"):
        services.booking_cancel_tickets(reservation=reservation, line_ids=[a2], actor=alice)

    payment.refresh_from_db()
    assert payment.refunded_amount == 122000 == remote(payment).cancel_amount
    assert [line.label for line in reservation.lines.all()] == [A1]
    services.payments_reconcile(older_than=dt.timedelta(0))
    assert [line.label for line in reservation.lines.all()] == [A1]
    assert remote(payment).cancel_amount == 122000
