"""The visitor's first journey in a real browser: home, search, event, seat map."""

import pytest

from events.tests.factories import EventFactory, LayoutFactory, PerformanceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_visitor_searches_opens_an_event_and_sees_its_seat_map(live_server, page):
    layout = LayoutFactory(
        spec="""
section "A구역" floor=1층 x=0 y=0
rows 1-10 seats 1-20 grade=R
standing "스탠딩" x=0 y=-150 w=300 h=100 capacity=50 grade=ST
"""
    )
    event = EventFactory(title="Moonlight Orchestra", venue=layout.venue, grades=[("R", 110000), ("ST", 88000)])
    performance = PerformanceFactory(event=event, layout=layout)
    PerformanceFactory(event=EventFactory(title="Unrelated Play"))

    page.goto(live_server.url)
    assert page.get_by_role("heading", name="On sale now").is_visible()
    page.get_by_role("searchbox").fill("moonlight")
    page.get_by_role("button", name="Search").click()

    page.wait_for_url("**/events/?q=moonlight")
    cards = page.locator("article.card")
    assert cards.count() == 1
    cards.first.get_by_role("link").click()

    page.wait_for_url(f"**{event.get_absolute_url()}")
    assert page.get_by_role("heading", level=1).inner_text() == "Moonlight Orchestra"
    assert page.get_by_text("R석").first.is_visible()
    page.get_by_role("link", name="Seat map").click()

    page.wait_for_url(f"**{performance.get_absolute_url()}")
    seat_map = page.locator("svg.seatmap")
    assert seat_map.is_visible()
    assert seat_map.locator("circle.seat").count() == 200
    assert seat_map.locator("circle.seat.taken").count() == 0
    assert page.locator(".legend").get_by_text("₩110,000").is_visible()
    assert seat_map.locator(".zone .zone-count").text_content() == "50 places left"
    box = seat_map.bounding_box()
    assert box["width"] > 300 and box["height"] > 100
