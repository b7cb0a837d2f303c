"""A customer picks seats on the map (mouse and keyboard), sees the countdown, releases."""

import re

import pytest
from django.conf import settings
from django.utils import timezone

from events.models import Performance
from events.tests.factories import UserFactory, session_key_for
from reservations.models import InventoryItem, Reservation
from reservations.tests.factories import seat_items

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, user):
    """Give the browser a session for `user`, as signing in would."""
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session_key_for(user), "url": live_server.url}]
    )


def test_pick_seats_see_the_countdown_and_release_them(live_server, page, performance):
    customer = UserFactory(email="customer@example.com")
    sign_in(page, live_server, customer)
    page.goto(live_server.url + performance.get_absolute_url())

    seat_a1, seat_a2 = seat_items(performance, "1층 A구역 A열 1번", "1층 A구역 A열 2번")
    page.locator(f'circle[data-item="{seat_a1.pk}"]').click()
    assert page.locator("#selection-count").inner_text() == "1"
    # Keyboard: the chosen seat has focus; the right arrow moves to A2, Space chooses it.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    assert page.locator(f'circle[data-item="{seat_a2.pk}"]').get_attribute("aria-checked") == "true"
    assert page.locator("#selection-count").inner_text() == "2"
    assert page.locator("#selection-total").inner_text() == "₩240,000"
    assert "1층 A구역 A열 2번" in page.locator("#selection-list").inner_text()
    # Choosing again un-chooses.
    page.locator(f'circle[data-item="{seat_a2.pk}"]').click()
    assert page.locator("#selection-count").inner_text() == "1"
    page.locator(f'circle[data-item="{seat_a2.pk}"]').click()

    page.get_by_role("button", name="Hold these seats").click()
    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))
    reservation = Reservation.objects.get(user=customer)
    assert page.get_by_role("heading", name="Checkout").is_visible()
    countdown = page.locator("[data-countdown]")
    first = countdown.inner_text()
    assert re.fullmatch(r"(9|10):\d\d", first), first
    page.wait_for_function(
        "first => document.querySelector('[data-countdown]').textContent !== first", arg=first, timeout=5000
    )
    assert page.get_by_text("₩244,000", exact=True).is_visible()  # two R seats plus two booking fees

    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Release these seats").click()  # asked first: "no" keeps them
    assert questions == ["Release these seats? Someone else may take them at once."]
    assert Reservation.objects.get(pk=reservation.pk).status == "held"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Release these seats").click()
    page.wait_for_url(f"**{performance.get_absolute_url()}")
    assert page.get_by_text("Your seats have been released.").is_visible()
    reservation.refresh_from_db()
    assert reservation.status == "released"
    assert set(InventoryItem.objects.filter(pk__in=[seat_a1.pk, seat_a2.pk]).values_list("status", flat=True)) == {
        "available"
    }
    assert page.locator(f'circle[data-item="{seat_a1.pk}"]').get_attribute("role") == "checkbox"


def test_the_limit_is_shown_before_submitting(live_server, page, performance):
    sign_in(page, live_server, UserFactory())
    page.goto(live_server.url + performance.get_absolute_url())
    seats = page.locator("circle[role=checkbox]")
    for index in range(5):
        seats.nth(index).click()
    assert page.locator("#selection-count").inner_text() == "4"
    assert page.locator("#limit-message").is_visible()


def test_a_seat_taken_meanwhile_is_greyed_out_and_the_rest_kept(live_server, page, performance):
    from reservations.tests.factories import hold

    customer = UserFactory()
    sign_in(page, live_server, customer)
    page.goto(live_server.url + performance.get_absolute_url())
    seat_a1, seat_a2 = seat_items(performance, "1층 A구역 A열 1번", "1층 A구역 A열 2번")
    page.locator(f'circle[data-item="{seat_a1.pk}"]').click()
    page.locator(f'circle[data-item="{seat_a2.pk}"]').click()
    hold(UserFactory(), performance, "1층 A구역 A열 2번")  # someone else is quicker
    (seat_c1,) = seat_items(performance, "1층 A구역 C열 1번")
    hold(UserFactory(), performance, "1층 A구역 C열 1번")  # and takes a seat elsewhere too
    page.get_by_role("button", name="Hold these seats").click()

    alert = page.get_by_role("alert").filter(has_text="just taken")
    alert.wait_for()
    assert "1층 A구역 A열 2번" in alert.inner_text()
    assert "taken" in page.locator(f'circle[data-item="{seat_a2.pk}"]').get_attribute("class")
    # The map shows every seat gone since it was drawn, not only the one tried.
    assert "taken" in page.locator(f'circle[data-item="{seat_c1.pk}"]').get_attribute("class")
    assert page.locator(f'circle[data-item="{seat_a1.pk}"]').get_attribute("aria-checked") == "true"
    assert page.locator("#selection-count").inner_text() == "1"

    page.get_by_role("button", name="Hold these seats").click()
    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))
    assert [line.label for line in Reservation.objects.get(user=customer).lines.all()] == ["1층 A구역 A열 1번"]


def test_in_a_rush_the_customer_waits_their_turn_then_gets_the_seat_map(live_server, page, performance):
    from reservations import waiting_room

    sign_in(page, live_server, UserFactory(email="queued@example.com"))
    # Sales open now; 30 customers a minute (one every 2 s) are let in.
    Performance.objects.filter(pk=performance.pk).update(waiting_room_rate=30, sales_open_at=timezone.now())
    performance.refresh_from_db()
    for _ in range(2):  # two customers were quicker: numbers 1 and 2, in after 1 s and 3 s
        waiting_room.waiting_room_draw(performance=performance, user=UserFactory())

    page.goto(live_server.url + performance.get_absolute_url())

    page.wait_for_url(f"**{performance.get_absolute_url()}waiting/")
    assert page.get_by_text("Your number: 3").is_visible()
    # The page counts down to this customer's turn (number 1 goes in meanwhile), then
    # moves on to the seat map by itself.
    page.get_by_text("1 person ahead of you").wait_for()
    page.wait_for_url(f"**{performance.get_absolute_url()}", timeout=15_000)
    [seat] = seat_items(performance, "1층 A구역 A열 1번")
    page.locator(f'circle[data-item="{seat.pk}"]').click()
    assert page.locator("#selection-count").inner_text() == "1"


def test_the_map_stays_reachable_by_keyboard_and_screen_reader_after_a_seat_is_taken(live_server, page, performance):
    from reservations.tests.factories import hold

    sign_in(page, live_server, UserFactory())
    page.goto(live_server.url + performance.get_absolute_url())
    # Seats are checkboxes in a named group: an image's children would be hidden.
    seat_map = page.get_by_role("group", name="Seat map")
    assert seat_map.get_by_role("checkbox", name=re.compile("1층 A구역 A열 1번")).count() == 1
    (seat_a1,) = seat_items(performance, "1층 A구역 A열 1번")
    page.locator(f'circle[data-item="{seat_a1.pk}"]').click()  # A1 is now the map's tab stop
    hold(UserFactory(), performance, "1층 A구역 A열 1번")
    page.get_by_role("button", name="Hold these seats").click()
    page.get_by_role("alert").filter(has_text="just taken").wait_for()

    assert page.locator(f'circle[data-item="{seat_a1.pk}"]').get_attribute("tabindex") is None
    # Another seat took over as the tab stop, so Tab still reaches the map.
    assert page.locator('circle[role=checkbox][tabindex="0"]').count() == 1


def test_back_from_checkout_draws_a_fresh_form(live_server, page, performance):
    customer = UserFactory()
    sign_in(page, live_server, customer)
    page.goto(live_server.url + performance.get_absolute_url())
    first_token = page.locator("#hold-form input[name=token]").input_value()
    (seat_a1,) = seat_items(performance, "1층 A구역 A열 1번")
    page.locator(f'circle[data-item="{seat_a1.pk}"]').click()
    page.get_by_role("button", name="Hold these seats").click()
    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))

    page.go_back()
    page.wait_for_load_state()
    # Not the stored copy, whose token already made the hold: a new token, today's map.
    page.wait_for_function(
        "token => document.querySelector('#hold-form input[name=token]').value !== token", arg=first_token
    )
    assert page.get_by_role("button", name="Hold these seats").is_enabled()
    assert "taken" in page.locator(f'circle[data-item="{seat_a1.pk}"]').get_attribute("class")


def test_on_a_phone_the_count_total_and_button_stay_in_view(live_server, browser, performance):
    context = browser.new_context(
        locale="en-US", viewport={"width": 390, "height": 800}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    try:
        customer = UserFactory()
        sign_in(page, live_server, customer)
        page.goto(live_server.url + performance.get_absolute_url())
        bar = page.locator("#phone-bar")
        assert bar.is_visible() and page.get_by_text("Zoom in with + to tap seats easily").is_visible()
        (seat,) = seat_items(performance, "1층 A구역 A열 1번")
        circle = page.locator(f'circle[data-item="{seat.pk}"]')
        drawn = circle.bounding_box()["width"]
        # Zoomed in, a seat is big enough for a finger, and the map pans inside its box.
        # The whole hall at first, as wide as the screen.
        assert page.locator("svg.seatmap").bounding_box()["width"] <= 390
        zoom_in = page.get_by_role("button", name="Zoom in")
        for _ in range(5):
            zoom_in.tap()
        assert page.locator("[data-zoom-level]").inner_text() == "600%"
        assert circle.bounding_box()["width"] >= 6 * drawn - 1
        scroller = page.locator("[data-map-scroll]")
        assert scroller.evaluate("box => box.scrollWidth > box.clientWidth && box.clientHeight <= innerHeight")
        circle.scroll_into_view_if_needed()
        circle.tap()
        assert bar.locator("[data-selection-count]").inner_text() == "1"
        assert bar.locator("[data-selection-total]").inner_text() == "₩120,000"
        box = bar.bounding_box()  # at the bottom of the screen, whatever the scroll
        assert box["y"] + box["height"] <= 800 and box["y"] > 600
        # A fifth ticket is refused where the customer is looking: in the bar, not only far below the map.
        others = page.locator("circle[role=checkbox]:not(.selected)")
        for index in range(4):
            others.nth(index).scroll_into_view_if_needed()
            others.nth(index).tap()
        assert bar.locator("[data-selection-count]").inner_text() == "4"
        assert bar.get_by_text("At most 4 tickets.").is_visible()
        for _ in range(3):  # back to the first seat alone
            page.locator("circle.selected").nth(1).tap()
        assert not bar.get_by_text("At most 4 tickets.").is_visible()
        bar.get_by_role("button", name="Hold these seats").tap()
        page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))
        assert Reservation.objects.get(user=customer).lines.get().label == "1층 A구역 A열 1번"
    finally:
        context.close()


def test_the_zoom_buttons_go_from_the_whole_hall_to_six_times_and_back(live_server, page, performance):
    sign_in(page, live_server, UserFactory())
    page.goto(live_server.url + performance.get_absolute_url())
    zoom_in, zoom_out = page.get_by_role("button", name="Zoom in"), page.get_by_role("button", name="Zoom out")
    level = page.locator("[data-zoom-level]")
    assert zoom_out.is_disabled() and level.inner_text() == "100%"
    svg = page.locator("svg.seatmap")
    whole = svg.bounding_box()["width"]
    seen = []
    while zoom_in.is_enabled():
        zoom_in.click()
        seen.append(level.inner_text())
    assert seen == ["150%", "200%", "300%", "400%", "600%"]
    assert abs(svg.bounding_box()["width"] - 6 * whole) < 2
    # The middle of the view stays the middle: halfway across the drawing, give or take.
    middle = page.locator("[data-map-scroll]").evaluate(
        "box => (box.scrollLeft + box.clientWidth / 2) / box.scrollWidth"
    )
    assert 0.4 < middle < 0.6
    while zoom_out.is_enabled():
        zoom_out.click()
    assert level.inner_text() == "100%" and abs(svg.bounding_box()["width"] - whole) < 2


def test_an_error_goes_once_the_choice_changes(live_server, page, performance):
    sign_in(page, live_server, UserFactory())
    page.goto(live_server.url + performance.get_absolute_url())
    page.get_by_role("button", name="Hold these seats").click()  # nothing chosen
    alert = page.get_by_role("alert").filter(has_text="Choose at least one seat.")
    alert.wait_for()
    (seat,) = seat_items(performance, "1층 A구역 A열 1번")
    page.locator(f'circle[data-item="{seat.pk}"]').click()
    alert.wait_for(state="detached")
    assert page.locator("#selection-count").inner_text() == "1"


def test_back_to_the_checkout_of_released_seats_shows_them_released(live_server, page, performance):
    customer = UserFactory()
    sign_in(page, live_server, customer)
    page.goto(live_server.url + performance.get_absolute_url())
    (seat,) = seat_items(performance, "1층 A구역 A열 1번")
    page.locator(f'circle[data-item="{seat.pk}"]').click()
    page.get_by_role("button", name="Hold these seats").click()
    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Release these seats").click()
    page.wait_for_url(f"**{performance.get_absolute_url()}")
    page.go_back()
    page.get_by_text("These seats were released, and nothing was paid for them.").wait_for()
    assert page.locator("[data-countdown]").count() == 0
    assert page.get_by_role("button", name=re.compile("^Pay")).count() == 0


def test_tapping_a_standing_zone_asks_for_a_place_in_it(live_server, page, performance):
    customer = UserFactory()
    sign_in(page, live_server, customer)
    page.goto(live_server.url + performance.get_absolute_url())
    zone = performance.layout.sections.get(kind="standing")
    page.locator(f'g.zone[data-section="{zone.pk}"]').click()  # its name or its box
    field = page.locator(f'input[name="standing-{zone.pk}"]')
    assert field.input_value() == "1"
    assert field.evaluate("input => input === document.activeElement")
    assert page.locator("#selection-count").inner_text() == "1"
    assert f"{zone.display_name} × 1" in page.locator("#selection-list").inner_text()
    field.fill("2")
    assert f"{zone.display_name} × 2" in page.locator("#selection-list").inner_text()
    page.get_by_role("button", name="Hold these seats").click()
    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))
    assert Reservation.objects.get(user=customer).lines.count() == 2


def test_choosing_a_ticket_type_at_checkout_changes_the_total_and_the_pay_button(live_server, page, performance):
    from events.models import Discount

    youth = Discount.objects.create(
        event=performance.event, name="청소년 할인", percent_off=20, conditions="만 13~18세 · 학생증 확인"
    )
    customer = UserFactory()
    sign_in(page, live_server, customer)
    page.goto(live_server.url + performance.get_absolute_url())
    for item in seat_items(performance, "1층 A구역 A열 1번", "1층 A구역 A열 2번"):
        page.locator(f'circle[data-item="{item.pk}"]').click()
    page.get_by_role("button", name="Hold these seats").click()
    page.wait_for_url(re.compile(r"/my/bookings/T\w+/$"))
    assert page.locator("#pay-button").inner_text() == "Pay ₩244,000"
    assert "만 13~18세 · 학생증 확인" in page.locator("#discounts").inner_text()

    # Choosing applies at once (no button to find): the page comes back with the new total.
    page.get_by_label("1층 A구역 A열 2번").select_option(label="청소년 할인 (20%) · ₩96,000")
    page.get_by_text("Ticket types saved").wait_for()

    assert page.locator("#pay-button").inner_text() == "Pay ₩220,000"  # 120,000 + 96,000 + 2 × 2,000
    assert "청소년 할인 × 1" in page.locator(".breakdown").inner_text()
    assert page.get_by_label("1층 A구역 A열 2번").input_value() == str(youth.pk)
    reservation = Reservation.objects.get(user=customer)
    assert reservation.total_amount == 220000


def test_door_staff_scan_each_ticket_once_at_the_entrance(live_server, page, performance):
    import datetime as dt

    from django.contrib.auth.models import Permission

    from reservations.services import reservation_confirm
    from reservations.tests.factories import hold
    from reservations.tickets import ticket_token

    now = timezone.now()
    Performance.objects.filter(pk=performance.pk).update(
        starts_at=now + dt.timedelta(hours=1), sales_close_at=now + dt.timedelta(minutes=30)
    )
    booking = reservation_confirm(
        reservation=hold(UserFactory(), performance, "1층 A구역 A열 1번", "1층 A구역 A열 2번")
    )
    first, second = booking.lines.order_by("id")
    door = UserFactory(is_staff=True)
    door.user_permissions.add(Permission.objects.get(codename="check_in"))
    sign_in(page, live_server, door)

    page.goto(live_server.url + "/admin/reservations/reservation/checkin/")
    page.get_by_role("link", name=re.compile(performance.event.title)).click()
    code = page.get_by_label("Scan a ticket's QR code, or type what it reads:")
    assert code.evaluate("element => element === document.activeElement")  # ready for the scanner
    code.fill(ticket_token(first, booking.code))
    code.press("Enter")  # what a scanner sends after the code
    page.locator("#checkin-result").wait_for()
    assert "ADMIT" in page.locator("#checkin-result").inner_text()
    assert page.locator("#checkin-counts").inner_text() == "1 of 2 tickets admitted."

    page.get_by_label("Scan a ticket's QR code, or type what it reads:").fill(ticket_token(first, booking.code))
    page.get_by_label("Scan a ticket's QR code, or type what it reads:").press("Enter")
    page.wait_for_function("document.querySelector('#checkin-result').textContent.includes('STOP')")
    assert "Already admitted at" in page.locator("#checkin-result").inner_text()
    second.refresh_from_db()
    assert second.admitted_at is None
