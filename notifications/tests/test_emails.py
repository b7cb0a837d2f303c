"""What each email says, in Korean and English, and the places that send them: after
a payment confirms, when a virtual account is issued, when a hold expires, when a
booking is cancelled or refunded (customer or staff)."""

import datetime as dt

import pytest
import requests
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from events.tests.factories import UserFactory
from notifications.models import Notification
from notifications.services import notification_queue
from payments import services as payment_services
from payments.models import Payment
from payments.tests.test_flow import checkout, paid_booking, start
from reservations.services import holds_expire, reservation_confirm
from reservations.tests.factories import hold

from .conftest import A1, A2, vbank_booking

pytestmark = pytest.mark.django_db

Kind = Notification.Kind
SITE = "https://tickets.example.com"


@pytest.fixture(autouse=True)
def _public_site_url(settings):
    settings.SITE_URL = SITE


def html_of(message) -> str:
    (html, mimetype), *_ = message.alternatives
    assert mimetype == "text/html"
    return html


def queue_and_send(capture, **kwargs):
    with capture(execute=True):
        notification = notification_queue(**kwargs)
    notification.refresh_from_db()
    return notification


def confirmed(user, performance, booked_at):
    reservation = hold(user, performance, A1, A2, now=booked_at)
    payment = Payment.objects.create(
        reservation=reservation, amount=reservation.total_amount, method="card", status="paid", paid_at=booked_at
    )
    return reservation_confirm(reservation=reservation, now=booked_at), payment


# What each kind needs, and phrases its email must contain: (English, Korean).
CASES = {
    Kind.BOOKING_CONFIRMED: (
        "Booking {code} is confirmed",
        "예매 {code} 확정",
        ["We have received your payment.", "View your e-ticket"],
        ["결제가 완료되어", "모바일 티켓 보기"],
    ),
    Kind.AWAITING_DEPOSIT: (
        "Deposit details for booking {code}",
        "예매 {code} 입금 안내",
        ["A virtual account has been issued", "94420200123456", "국민은행", "(주)티켓팅", "Deposit by"],
        ["가상계좌가 발급되었습니다", "94420200123456", "국민은행", "입금기한"],
    ),
    Kind.PAYMENT_REMINDER: (
        "Reminder: please pay for booking {code} by",
        "예매 {code} 결제 기한 안내",
        ["left to pay for booking", "94420200123456", "Deposit by"],
        ["결제 기한까지", "94420200123456", "입금기한"],
    ),
    Kind.BOOKING_EXPIRED: (
        "Booking {code} has expired",
        "예매 {code} 기한 만료 안내",
        ["its seats have been released", "Please do not deposit to the virtual account any more."],
        ["좌석은 다시 판매됩니다", "가상계좌로 입금하지 마세요"],
    ),
    Kind.BOOKING_CANCELLED: (
        "Booking {code} is cancelled",
        "예매 {code} 취소 안내",
        ["has been cancelled", "Refunded", "Cancellation fee"],
        ["취소되었습니다", "환불 금액", "취소수수료"],
    ),
    Kind.REFUNDED: (
        "Refund for booking {code}",
        "예매 {code} 환불 안내",
        ["We have refunded", "Your booking itself is unchanged."],
        ["환불해 드렸습니다", "예매는 그대로 유지됩니다"],
    ),
    Kind.PERFORMANCE_CANCELLED: (
        "{event} is cancelled: your refund for booking {code}",
        "공연 취소 및 환불 안내: {event} (예매 {code})",
        ["everything you paid is refunded", "by virtual account", "Cancel and get your refund"],
        ["전액을 환불해 드립니다", "가상계좌로 결제하셨으므로", "취소하고 환불받기"],
    ),
    Kind.REFUND_ACCOUNT_NEEDED: (
        "Where should we refund your deposit for booking {code}?",
        "예매 {code} 입금액 환불 계좌 안내",
        ["can only be refunded to a bank account you name", "₩122,000", "Enter the refund account"],
        ["환불받으실 계좌를 알려", "122,000원", "환불 계좌 입력"],
    ),
    Kind.PERFORMANCE_TOMORROW: (
        "Tomorrow: {event}",
        "내일 공연 안내: {event}",
        ["is tomorrow", "Open your e-ticket", "서울특별시 종로구 대학로 1"],
        ["내일", "모바일 티켓 열기", "서울특별시 종로구 대학로 1"],
    ),
}


def setup_kind(kind, user, performance, booked_at):
    """A booking in the state its email is about: (reservation, payment, context)."""
    if kind in (Kind.AWAITING_DEPOSIT, Kind.PAYMENT_REMINDER, Kind.BOOKING_EXPIRED):
        reservation, payment = vbank_booking(
            user, performance, A1, A2, booked_at=booked_at, due=booked_at + dt.timedelta(hours=30)
        )
        return reservation, payment, {}
    reservation, payment = confirmed(user, performance, booked_at)
    if kind == Kind.BOOKING_CANCELLED:
        return reservation, payment, {"refund": 220000, "fee": 24000}
    if kind == Kind.REFUND_ACCOUNT_NEEDED:
        Payment.objects.filter(pk=payment.pk).update(needs_refund=True)
        payment.refresh_from_db()
        return reservation, payment, {"refund": 122000}
    if kind == Kind.REFUNDED:
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=20000)
        payment.refresh_from_db()
        return reservation, payment, {"refund": 20000}
    return reservation, payment, {}


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("kind", list(CASES))
def test_each_email_in_the_customers_language(
    kind, language, performance, booked_at, mailoutbox, django_capture_on_commit_callbacks
):
    user = UserFactory(email="minji@example.com", name="김민지", preferred_language=language)
    reservation, payment, context = setup_kind(kind, user, performance, booked_at)
    notification = queue_and_send(
        django_capture_on_commit_callbacks, kind=kind, reservation=reservation, payment=payment, context=context
    )
    assert notification.status == "sent", notification.error
    assert (notification.language, notification.recipient) == (language, "minji@example.com")
    (message,) = mailoutbox
    subject_en, subject_ko, phrases_en, phrases_ko = CASES[kind]
    subject = (subject_en if language == "en" else subject_ko).format(
        code=reservation.code, event=performance.event.title
    )
    assert subject in message.subject
    assert message.subject.startswith("[Ticketing]" if language == "en" else "[티켓팅]")
    assert notification.subject == message.subject
    assert message.to == ["minji@example.com"]
    assert message.extra_headers["Message-ID"] == f"<notification-{notification.pk}@tickets.example.com>"
    html = html_of(message)
    assert f'<html lang="{language}">' in html
    for phrase in phrases_en if language == "en" else phrases_ko:
        assert phrase in message.body, phrase
        assert phrase.replace("'", "&#x27;") in html, phrase
    # Plain text is not HTML-escaped; the HTML is.
    assert "&amp;" not in message.body and "<" not in message.body.replace("<notification", "")
    # Links are absolute, to the public site.
    booking_url = SITE + reverse("reservations:detail", args=[reservation.code])
    link = SITE + performance.get_absolute_url() if kind == Kind.BOOKING_EXPIRED else booking_url
    assert link in message.body and f'href="{link}"' in html
    assert f'href="{SITE}/my/"' in html
    # Amounts in the language's format.
    total = "₩244,000" if language == "en" else "244,000원"
    assert total in message.body
    if kind == Kind.BOOKING_CANCELLED:
        assert ("₩220,000" if language == "en" else "220,000원") in message.body
        assert ("₩24,000" if language == "en" else "24,000원") in message.body


def test_deadlines_are_shown_in_korea_time(
    alice, performance, booked_at, mailoutbox, django_capture_on_commit_callbacks
):
    reservation, payment, _ = setup_kind(Kind.AWAITING_DEPOSIT, alice, performance, booked_at)
    queue_and_send(
        django_capture_on_commit_callbacks, kind=Kind.AWAITING_DEPOSIT, reservation=reservation, payment=payment
    )
    due = timezone.localtime(payment.vbank_due, timezone.get_fixed_timezone(9 * 60))
    assert f"{due:%Y.%m.%d}" in mailoutbox[0].body and f"{due:%H:%M}" in mailoutbox[0].body


# --- Where they are sent from ---------------------------------------------------------


def sent_kinds(reservation) -> list[str]:
    return list(
        Notification.objects.filter(reservation=reservation, status="sent")
        .order_by("pk")
        .values_list("kind", flat=True)
    )


def test_a_card_payment_sends_one_confirmation(
    fake_iamport, alice, performance, mailoutbox, django_capture_on_commit_callbacks
):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)
    with django_capture_on_commit_callbacks(execute=True):
        payment_services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
    with django_capture_on_commit_callbacks(execute=True):
        payment_services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")  # the webhook, later
    assert sent_kinds(reservation) == ["booking_confirmed"]
    assert len(mailoutbox) == 1 and "is confirmed" in mailoutbox[0].subject


def test_a_rolled_back_payment_sends_nothing(alice, performance, django_capture_on_commit_callbacks, mailoutbox):
    reservation = hold(alice, performance, A1)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        notification_queue(kind=Kind.BOOKING_CONFIRMED, reservation=reservation)
        raise RuntimeError("the payment transaction failed after deciding the email")
    assert callbacks == [] and mailoutbox == []
    assert not Notification.objects.exists()


def test_a_virtual_account_sends_deposit_details_then_the_confirmation(
    fake_iamport, alice, performance, mailoutbox, django_capture_on_commit_callbacks
):
    reservation = hold(alice, performance, A1)
    payment = start(reservation, method="vbank")
    rsp = checkout(fake_iamport, payment, outcome="vbank")
    with django_capture_on_commit_callbacks(execute=True):
        payment_services.payment_sync(imp_uid=rsp["imp_uid"], source="callback")
        payment_services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")
    payment.refresh_from_db()
    assert sent_kinds(reservation) == ["awaiting_deposit"]
    assert payment.vbank_num in mailoutbox[0].body
    requests.post(fake_iamport.url + "__fake__/vbank/deposit", json={"imp_uid": rsp["imp_uid"]}, timeout=10)
    with django_capture_on_commit_callbacks(execute=True):
        payment_services.payment_sync(imp_uid=rsp["imp_uid"], source="webhook")
    assert sent_kinds(reservation) == ["awaiting_deposit", "booking_confirmed"]


def test_expiry_emails_customers_who_had_started_paying(
    alice, bob, performance, booked_at, mailoutbox, django_capture_on_commit_callbacks
):
    unpaid_account, _payment = vbank_booking(
        alice, performance, A1, booked_at=booked_at, due=booked_at + dt.timedelta(hours=2)
    )
    browsing = hold(bob, performance, A2, now=booked_at)  # never got to paying
    with django_capture_on_commit_callbacks(execute=True):
        assert holds_expire(now=booked_at + dt.timedelta(hours=3)) == 2
    assert sent_kinds(unpaid_account) == ["booking_expired"]
    assert sent_kinds(browsing) == []
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    # The sweeper running again finds nothing to expire and sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert holds_expire(now=booked_at + dt.timedelta(hours=4)) == 0
    assert len(mailoutbox) == 1


def test_a_customer_cancellation_sends_the_refund(
    fake_iamport, alice, performance, mailoutbox, django_capture_on_commit_callbacks
):
    reservation, _payment = paid_booking(fake_iamport, alice, performance, A1)
    with django_capture_on_commit_callbacks(execute=True):
        quote = payment_services.booking_cancel(reservation=reservation, actor=alice)
    notification = Notification.objects.get(reservation=reservation, kind="booking_cancelled")
    assert notification.status == "sent"
    assert notification.context == {"refund": quote.total_refund, "fee": quote.cancellation_fee}
    assert "Refunded: ₩122,000" in mailoutbox[-1].body


def test_a_staff_refund_emails_the_customer(
    fake_iamport, client, alice, performance, mailoutbox, django_capture_on_commit_callbacks
):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"token": "first", "amount": 20000, "reason": "obstructed view"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"token": "second", "amount": 102000, "reason": "show cancelled", "cancel_booking": "on"})
    assert sent_kinds(reservation) == ["refunded", "booking_cancelled"]
    refunded, cancelled = mailoutbox
    assert "We have refunded ₩20,000" in refunded.body
    assert "Refunded: ₩102,000" in cancelled.body


def test_a_refund_made_at_iamport_cancels_and_emails_once(
    fake_iamport, alice, performance, mailoutbox, django_capture_on_commit_callbacks
):
    reservation, payment = paid_booking(fake_iamport, alice, performance, A1)
    requests.post(
        fake_iamport.url + "__fake__/console/cancel", json={"imp_uid": payment.imp_uid, "reason": "console"}, timeout=10
    ).raise_for_status()
    with django_capture_on_commit_callbacks(execute=True):
        payment_services.payment_sync(imp_uid=payment.imp_uid, source="webhook")
        payment_services.payment_sync(imp_uid=payment.imp_uid, source="reconcile")
    reservation.refresh_from_db()
    assert reservation.status == "cancelled"
    assert sent_kinds(reservation) == ["booking_cancelled"]
    assert "Refunded: ₩122,000" in mailoutbox[0].body
