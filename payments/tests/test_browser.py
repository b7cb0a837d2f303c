"""The whole journey in a real browser, through the fake I'mport's payment window:
card, virtual account with a later deposit, and cancelling with the previewed refund."""

import re

import pytest

from events.tests.factories import UserFactory
from payments.models import Payment
from reservations.models import Reservation
from reservations.tests.factories import seat_items
from reservations.tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

A1, A2 = "1층 A구역 A열 1번", "1층 A구역 A열 2번"


@pytest.fixture
def shop(live_server, fake_iamport, settings, performance):
    """The site on a live server whose webhooks the fake gateway can reach."""
    settings.SITE_URL = live_server.url
    return live_server


def hold_two_seats(page, shop, performance):
    page.goto(shop.url + performance.get_absolute_url())
    for item in seat_items(performance, A1, A2):
        page.locator(f'circle[data-item="{item.pk}"]').click()
    page.get_by_role("button", name="Hold these seats").click()
    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))


def pay(page, method_label, choice):
    page.get_by_label("Mobile phone").fill("010-1234-5678")  # the name comes from the profile
    page.get_by_label(method_label).check()
    page.get_by_label("I have read the cancellation and refund policy").check()
    page.locator("#pay-button").click()
    window = page.frame_locator("iframe").first
    window.get_by_role("button", name=choice).click()
    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))


def test_pay_by_card_and_see_the_confirmed_booking(shop, page, performance):
    customer = UserFactory()
    sign_in(page, shop, customer)
    hold_two_seats(page, shop, performance)
    pay(page, "Credit or debit card", "Approve payment")
    # The webhook and the callback race; whichever syncs first, the customer hears the same news.
    assert "booking is confirmed" in page.locator(".messages").inner_text()
    assert page.get_by_text("Confirmed").first.is_visible()
    reservation = Reservation.objects.get(user=customer)
    assert reservation.status == "confirmed"
    assert Payment.objects.get(reservation=reservation).status == "paid"
    # Back, to the page that opened the payment window: it does not open it again for an
    # attempt that is over, but comes back to the booking, with no "payment failed".
    page.go_back()
    page.wait_for_url(re.compile(rf"{reservation.get_absolute_url()}$"))
    page.wait_for_load_state()
    assert page.get_by_text("E-ticket").is_visible()
    assert "did not go through" not in page.content()
    assert Payment.objects.filter(reservation=reservation).count() == 1


def test_pay_by_virtual_account_and_deposit_later(shop, page, performance, fake_iamport):
    customer = UserFactory()
    sign_in(page, shop, customer)
    hold_two_seats(page, shop, performance)
    pay(page, "Virtual account (bank deposit)", "Issue virtual account")
    payment = Payment.objects.get(reservation__user=customer)
    assert payment.status == "awaiting_deposit"
    details = page.locator("#deposit-details")
    assert payment.vbank_num in details.inner_text()
    assert "₩244,000" in details.inner_text()

    fake_iamport.deposit(payment.imp_uid)  # the customer pays at the bank; I'mport sends a webhook
    fake_iamport.wait_for_webhooks()
    page.reload()
    assert page.get_by_text("Confirmed").first.is_visible()
    assert Reservation.objects.get(user=customer).status == "confirmed"


def test_cancel_with_the_previewed_refund(shop, page, performance):
    customer = UserFactory()
    sign_in(page, shop, customer)
    hold_two_seats(page, shop, performance)
    pay(page, "Credit or debit card", "Approve payment")
    page.get_by_role("link", name="Cancel all or some tickets").click()
    preview = page.locator("#refund-preview")
    assert "₩244,000" in preview.inner_text()  # booked today: everything back, booking fee too
    page.get_by_role("button", name=re.compile("Cancel and refund ₩244,000")).click()
    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))
    assert page.get_by_text("Your booking is cancelled.").is_visible()
    payment = Payment.objects.get(reservation__user=customer)
    assert (payment.status, payment.refunded_amount) == ("cancelled", 244000)


def test_cancel_one_of_two_tickets_and_keep_the_other(shop, page, performance):
    customer = UserFactory()
    sign_in(page, shop, customer)
    hold_two_seats(page, shop, performance)
    pay(page, "Credit or debit card", "Approve payment")
    page.get_by_role("link", name="Cancel all or some tickets").click()
    page.wait_for_url("**/cancel/")
    page.wait_for_load_state()
    assert not page.locator("#update-refund").is_visible()  # the boxes update the refund themselves

    page.get_by_label(re.compile(A1)).uncheck()  # keep A1
    page.wait_for_url(re.compile(r"tickets="))
    assert "₩122,000" in page.locator("#refund-preview").inner_text()  # A2 and its booking fee, booked today
    page.get_by_role("button", name=re.compile("Cancel 1 ticket and refund ₩122,000")).click()

    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))
    assert "1 ticket cancelled: ₩122,000 will be refunded." in page.locator(".messages").inner_text()
    assert A2 in page.locator("#cancelled-tickets").inner_text()
    assert page.get_by_text("E-ticket").is_visible()  # the booking stands, for A1
    reservation = Reservation.objects.get(user=customer)
    assert reservation.status == "confirmed"
    assert [line.label for line in reservation.lines.all()] == [A1]
    payment = Payment.objects.get(reservation=reservation)
    assert (payment.status, payment.refunded_amount) == ("paid", 122000)


def test_on_a_phone_a_mistyped_phone_number_is_shown_where_the_customer_looks(shop, browser, performance):
    from reservations.services import Selection, reservation_hold

    context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 800}, is_mobile=True)
    page = context.new_page()
    try:
        customer = UserFactory()
        (seat,) = seat_items(performance, A1)
        reservation = reservation_hold(
            user=customer, performance=performance, selection=Selection(item_ids=(seat.pk,)), request_token="t"
        )
        sign_in(page, shop, customer)
        page.goto(shop.url + reservation.get_absolute_url())
        page.get_by_label("Mobile phone").fill("010-12")
        page.get_by_label("I have read the cancellation and refund policy").check()
        page.locator("#pay-button").click()
        page.wait_for_url(re.compile(r"/pay/$"))
        error = page.locator("#pay-errors")
        error.wait_for()
        page.wait_for_function("document.activeElement && document.activeElement.id === 'pay-errors'")
        box = error.bounding_box()
        assert 0 <= box["y"] <= 800 - box["height"], box  # in view, not 1,600 px down
        assert page.get_by_text("Enter a valid phone number").is_visible()
        assert page.get_by_label("Mobile phone").input_value() == "010-12"  # kept as typed
        assert not Payment.objects.exists()
    finally:
        context.close()
