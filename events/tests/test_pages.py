import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from events import selectors
from events.models import Event, Performance, PriceGrade
from events.services import performance_duplicate
from events.tests.factories import EventFactory, LayoutFactory, PerformanceFactory, UserFactory
from reservations.models import InventoryItem
from reservations.tests.factories import hold

pytestmark = pytest.mark.django_db


def titles(response):
    return re.findall(r"<h3>(.*?)</h3>", response.content.decode())


def count_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_home_lists_on_sale_and_opening_soon_events(client, performance):
    later = EventFactory(title="Opening Later")
    PerformanceFactory(
        event=later,
        status=Performance.Status.SCHEDULED,
        sales_open_at=timezone.now() + dt.timedelta(days=3),
    )
    EventFactory(title="Hidden Draft", status=Event.Status.DRAFT)
    response = client.get("/")
    html = response.content.decode()
    on_sale, upcoming = html.split('id="upcoming-title"')
    assert performance.event.title in on_sale
    assert "Opening Later" in upcoming and "Opening Later" not in on_sale
    assert "Hidden Draft" not in html


def test_event_list_searches_title_and_venue(client):
    concert = PerformanceFactory(event=EventFactory(title="Winter Gala")).event
    play = PerformanceFactory(event=EventFactory(title="Small Room", category=Event.Category.PLAY)).event
    assert titles(client.get("/events/", {"q": "gala"})) == [concert.title]
    assert titles(client.get("/events/", {"q": play.venue.name})) == [play.title]
    assert titles(client.get("/events/", {"category": "play"})) == [play.title]
    response = client.get("/events/", {"q": "nothing like this"})
    assert "No events match your search" in response.content.decode()


def test_event_list_filters_by_performance_dates(client):
    soon = PerformanceFactory(starts_at=timezone.now() + dt.timedelta(days=3)).event
    later = PerformanceFactory(starts_at=timezone.now() + dt.timedelta(days=40)).event
    day = timezone.localdate() + dt.timedelta(days=3)
    assert titles(client.get("/events/", {"date_from": day, "date_to": day})) == [soon.title]
    assert titles(client.get("/events/", {"date_from": day + dt.timedelta(days=1)})) == [later.title]


def test_bad_filters_are_explained_and_do_not_hide_everything(client, performance):
    response = client.get("/events/", {"date_from": "not-a-date", "q": performance.event.title})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Enter a valid date." in html
    assert titles(response) == [performance.event.title]
    response = client.get("/events/", {"date_from": "2030-01-10", "date_to": "2030-01-01"})
    assert "The end date is before the start date." in response.content.decode()
    response = client.get("/events/", {"category": "opera"})
    assert "Select a valid choice" in response.content.decode()


def test_event_list_paginates(client):
    layout = LayoutFactory()
    for n in range(14):
        PerformanceFactory(event=EventFactory(title=f"Show {n:02d}", venue=layout.venue), layout=layout)
    first = client.get("/events/")
    second = client.get("/events/", {"page": 2})
    assert len(titles(first)) == 12 and len(titles(second)) == 2
    assert "Page 1 of 2" in first.content.decode()
    assert len(titles(client.get("/events/", {"page": "999"}))) == 2  # out of range: last page


def test_event_detail_shows_remaining_places_per_grade(client, performance):
    sold = InventoryItem.objects.filter(performance=performance, price_grade__code="R")[:3]
    InventoryItem.objects.filter(pk__in=[i.pk for i in sold]).update(status="sold")
    response = client.get(performance.event.get_absolute_url())
    html = " ".join(response.content.decode().split())
    assert 'R석 <span class="">7 left</span>' in html
    assert 'S석 <span class="">5 left</span>' in html
    assert 'ST석 <span class="">4 left</span>' in html
    assert "₩120,000" in html
    assert performance.get_absolute_url() in html


def test_performance_page_draws_the_seat_map(client, performance):
    taken = InventoryItem.objects.filter(performance=performance, seat__isnull=False).first()
    InventoryItem.objects.filter(pk=taken.pk).update(status="held", held_until=timezone.now() + dt.timedelta(minutes=5))
    response = client.get(performance.get_absolute_url())
    html = response.content.decode()
    assert html.count('<circle class="seat') == 15
    assert html.count('class="seat taken') == 1
    assert f'data-item="{taken.pk}"' in html
    assert "1층 A구역 A열 1번" in html
    assert "4 places left" in html  # standing zone
    assert "₩90,000" in html  # S grade in the legend


def test_korean_pages_format_won_and_dates_the_korean_way(client, performance, settings):
    settings.LANGUAGE_CODE = "ko"
    response = client.get(performance.event.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="ko")
    html = response.content.decode()
    assert "120,000원" in html
    assert response.headers["Content-Language"] == "ko"


def test_unknown_slugs_and_ids_are_styled_404s(client, performance):
    for url in [
        "/events/no-such-event/",
        reverse("events:performance_detail", kwargs={"slug": performance.event.slug, "pk": 999999}),
        reverse("events:performance_detail", kwargs={"slug": "other", "pk": performance.pk}),
    ]:
        response = client.get(url)
        assert response.status_code == 404
        assert "We could not find that page" in response.content.decode()


def test_draft_events_are_visible_to_staff_only(client, performance):
    Event.objects.filter(pk=performance.event_id).update(status=Event.Status.DRAFT)
    url = performance.get_absolute_url()
    assert client.get(url).status_code == 404
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url).status_code == 200
    assert client.get(performance.event.get_absolute_url()).status_code == 200


def test_only_safe_methods_are_allowed(client, performance):
    assert client.post(performance.get_absolute_url()).status_code == 405


def test_query_counts_do_not_grow_with_events_or_seats(client):
    small = PerformanceFactory()
    counts_small = {
        "home": count_queries(client, "/"),
        "list": count_queries(client, "/events/"),
        "detail": count_queries(client, small.event.get_absolute_url()),
        "map": count_queries(client, small.get_absolute_url()),
    }
    big_layout = LayoutFactory(
        spec='section "A" x=0 y=0\nrows 1-40 seats 1-50 grade=R\nsection "B" x=1200 y=0\nrow 1 seats 1-9 grade=S'
    )
    big_event = EventFactory(venue=big_layout.venue, grades=[("R", 1), ("S", 2)])
    big = PerformanceFactory(event=big_event, layout=big_layout)
    for days in range(2, 6):
        performance_duplicate(performance=big, starts_at=big.starts_at + dt.timedelta(days=days))
    for _ in range(5):
        PerformanceFactory()
    assert count_queries(client, "/") == counts_small["home"]
    assert count_queries(client, "/events/") == counts_small["list"]
    assert count_queries(client, big_event.get_absolute_url()) == counts_small["detail"]
    assert count_queries(client, big.get_absolute_url()) == counts_small["map"]
    assert counts_small["map"] <= 5


def test_seats_left_are_counted_for_sellable_performances_only(performance):
    ended = performance_duplicate(performance=performance, starts_at=timezone.now() - dt.timedelta(days=1))
    closed = performance_duplicate(performance=performance, starts_at=performance.starts_at + dt.timedelta(days=1))
    Performance.objects.filter(pk=closed.pk).update(status=Performance.Status.CLOSED)

    performances = {p.pk: p for p in selectors.event_performances(event=performance.event)}

    assert [a.free for a in performances[performance.pk].availability] == [10, 5, 4]
    assert performances[ended.pk].availability == [] and performances[ended.pk].state == "past"
    assert performances[closed.pk].availability == [] and performances[closed.pk].state == "closed"


def test_seats_left_are_reused_for_a_few_seconds(client, performance, settings):
    settings.TICKETING_EVENT_FREE_COUNTS_SECONDS = 5
    cache.delete_many([f"event-free-counts:{connection.settings_dict['NAME']}:{performance.event_id}"])
    url = performance.event.get_absolute_url()
    first = count_queries(client, url)
    hold(UserFactory(), performance, "1층 A구역 A열 1번")

    with CaptureQueriesContext(connection) as queries:
        html = " ".join(client.get(url).content.decode().split())

    assert len(queries) == first - 1  # no count this time
    assert 'R석 <span class="">10 left</span>' in html  # as counted a moment ago
    settings.TICKETING_EVENT_FREE_COUNTS_SECONDS = 0
    html = " ".join(client.get(url).content.decode().split())
    assert 'R석 <span class="">9 left</span>' in html


def test_the_event_page_counts_in_the_database_when_the_cache_is_down(client, performance, settings, monkeypatch):
    settings.TICKETING_EVENT_FREE_COUNTS_SECONDS = 5

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(selectors.cache, "get", down)
    monkeypatch.setattr(selectors.cache, "set", down)

    html = " ".join(client.get(performance.event.get_absolute_url()).content.decode().split())

    assert 'R석 <span class="">10 left</span>' in html


def test_the_seat_map_keeps_the_halls_places_but_never_whether_they_are_free(client, performance, settings):
    settings.TICKETING_SEAT_MAP_PLACES_SECONDS = 60
    url = performance.get_absolute_url()
    first = count_queries(client, url)
    taken = hold(UserFactory(), performance, "1층 A구역 A열 1번")
    standing = InventoryItem.objects.filter(performance=performance, seat__isnull=True).first()
    InventoryItem.objects.filter(pk=standing.pk).update(status="sold")

    with CaptureQueriesContext(connection) as queries:
        html = client.get(url).content.decode()

    assert len(queries) == first - 1  # the places came from this process's memory
    [item_id] = taken.lines.values_list("item_id", flat=True)
    assert 'class="seat taken" cx' in html and html.count('class="seat taken') == 1
    assert re.search(rf'class="seat taken"[^>]*data-item="{item_id}"', html)
    assert "3 places left" in html  # the standing zone, live too


def test_a_signed_in_customer_s_map_reads_the_grades_once(client, alice, performance):
    """The best-available form lists the grades the map already loaded, not a queryset
    its select would read afresh on every look."""
    client.force_login(alice)
    grades_table = PriceGrade._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        html = " ".join(client.get(performance.get_absolute_url()).content.decode().split())

    assert sum(grades_table in q["sql"] for q in queries) == 1
    seated = [grade for grade in performance.event.grades.all() if grade.code != "ST"]  # no seat is ST
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', html.split('name="grade"', 1)[1])
    assert options == [(str(grade.pk), grade.display_name) for grade in seated]


@pytest.fixture
def performance_rows_kept(settings):
    """Performance rows kept for a second, from an empty cache (the tests' clock is fake)."""
    settings.TICKETING_PERFORMANCE_SECONDS = 1
    selectors._PERFORMANCE_ROWS.clear()
    yield
    selectors._PERFORMANCE_ROWS.clear()


def test_a_held_performance_is_read_once_a_second_and_each_caller_gets_its_own(
    performance, performance_rows_kept, monkeypatch
):
    clock = [1000.0]
    monkeypatch.setattr(selectors, "_clock", lambda: clock[0])
    find = {"slug": performance.event.slug, "pk": performance.pk}

    with CaptureQueriesContext(connection) as first:
        one = selectors.published_performance(**find)
    Performance.objects.filter(pk=performance.pk).update(status=Performance.Status.CLOSED)
    clock[0] += 0.9
    with CaptureQueriesContext(connection) as again:
        two = selectors.published_performance(**find)

    assert len(first) == 1 and len(again) == 0
    assert one is not two and one.event is not two.event  # nobody shares a mutable instance
    assert (one.pk, one.event.slug, one.starts_at, two.status) == (two.pk, two.event.slug, two.starts_at, "on_sale")

    clock[0] += 0.2  # past the second: the staff's edit is read
    assert selectors.published_performance(**find).status == Performance.Status.CLOSED


def test_a_missing_performance_is_kept_missing_for_the_second_too(performance, performance_rows_kept, monkeypatch):
    clock = [5000.0]
    monkeypatch.setattr(selectors, "_clock", lambda: clock[0])
    Event.objects.filter(pk=performance.event_id).update(status=Event.Status.DRAFT)
    find = {"slug": performance.event.slug, "pk": performance.pk}

    assert selectors.published_performance(**find) is None
    Event.objects.filter(pk=performance.event_id).update(status=Event.Status.PUBLISHED)
    with CaptureQueriesContext(connection) as again:
        assert selectors.published_performance(**find) is None
    assert len(again) == 0
    clock[0] += 1.5
    assert selectors.published_performance(**find) is not None


def test_the_seat_map_page_is_never_stored(client, alice, performance):
    # Live seats and a one-time form token: Back must not show a stored copy, nor may a proxy.
    for signed_in in (False, True):
        if signed_in:
            client.force_login(alice)
        response = client.get(performance.get_absolute_url())
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_seats_are_named_for_screen_readers_with_wheelchair_spaces_and_no_sold_or_held(client, performance):
    from events.models import Seat

    Seat.objects.filter(layout=performance.layout, label="1층 A구역 C열 1번").update(is_accessible=True)
    taken = InventoryItem.objects.get(performance=performance, seat__label="1층 A구역 A열 1번")
    InventoryItem.objects.filter(pk=taken.pk).update(status="held", held_until=timezone.now() + dt.timedelta(minutes=5))
    html = client.get(performance.get_absolute_url()).content.decode()
    assert "<title>1층 A구역 C열 1번 · S석 ₩90,000 · wheelchair space</title>" in html
    assert "<title>1층 A구역 A열 1번 · unavailable</title>" in html  # held, and not told so
    assert " · sold</title>" not in html and " · held</title>" not in html


def test_the_seat_map_counts_the_tickets_the_customer_already_has(client, alice, performance):
    client.force_login(alice)
    url = performance.get_absolute_url()
    page = client.get(url).content.decode()
    assert 'data-limit="4"' in page and 'id="owned-note"' not in page
    hold(alice, performance, "1층 A구역 A열 1번", "1층 A구역 A열 2번", "1층 A구역 A열 3번")
    page = client.get(url).content.decode()
    assert 'data-limit="1"' in page
    assert "You already have 3 tickets for this performance; with the limit of 4, you can choose 1 more." in page
    hold(alice, performance, "1층 A구역 A열 4번")
    page = client.get(url).content.decode()
    assert 'data-limit="0"' in page
    assert "You already have the most tickets one customer can book for this performance (4)." in page
    assert "You already have as many tickets as one customer may book." in page  # said when a seat is tapped
    assert "at most 0" not in page
    # Someone else's tickets are theirs: another customer may choose four.
    client.force_login(UserFactory())
    assert 'data-limit="4"' in client.get(url).content.decode()


def test_the_event_page_states_the_refund_policy_before_seats_are_picked(client, performance):
    from payments.models import RefundPolicy

    page = client.get(performance.event.get_absolute_url()).content.decode()
    section = page.split('id="policy-title"')[1].split("</section>")[0]
    assert "Free cancellation within 7 days of booking" in section and "after 17:00 the day before" in section
    RefundPolicy.objects.create(event=performance.event, cutoff_hour_day_before=12, free_days_after_booking=3)
    section = client.get(performance.event.get_absolute_url()).content.decode().split('id="policy-title"')[1]
    assert "within 3 days of booking" in section and "after 12:00 the day before" in section
