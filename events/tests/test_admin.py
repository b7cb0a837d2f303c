"""The staff admin of the catalogue: access, inventory columns, bulk actions,
performance creation and duplication, the layout builder and seat constraints."""

import datetime as dt
import re

import pytest
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from events.admin import PerformanceAdmin
from events.models import Event, Performance, Seat, SeatLayout
from events.tests.factories import EventFactory, LayoutFactory, PerformanceFactory, UserFactory, VenueFactory
from reservations.models import InventoryItem

pytestmark = pytest.mark.django_db

PERFORMANCE_PLACES = 19  # the `hall` fixture: 15 seats and a standing zone of 4
SEATMAP = '<svg class="seatmap"'  # the admin theme icons are SVGs too


# --- helpers -----------------------------------------------------------------


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


def _message_texts(response) -> list[str]:
    return [text for _level, text in _messages(response)]


def _errors(response) -> str:
    """Every error the admin change form shows, as one string."""
    form = response.context["adminform"].form
    parts = [str(e) for errors in form.errors.values() for e in errors]
    for formset in response.context.get("inline_admin_formsets", []):
        parts += [str(e) for e in formset.formset.non_form_errors()]
        parts += [str(e) for errors in formset.formset.errors for field in errors.values() for e in field]
    return " | ".join(parts)


def _action(client, url_name, action, objects):
    return client.post(
        reverse(url_name),
        {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], "index": 0},
    )


def _column(html: str, obj_pk: int, name: str) -> str:
    """The text of one list_display cell in the changelist row of `obj_pk`."""
    rows = [
        row for row in re.findall(r"<tr>.*?</tr>", html, re.S) if f'name="_selected_action" value="{obj_pk}"' in row
    ]
    assert len(rows) == 1, f"no changelist row for pk {obj_pk}"
    cell = re.search(rf'<td class="field-{name}[^"]*">(.*?)</td>', rows[0], re.S)
    assert cell, f"no {name} column in row {obj_pk}"
    return cell.group(1).strip()


def _performance_form(event, layout, *, starts=("2030-01-05", "19:30"), opens=("2029-12-01", "10:00"), closes=None):
    closes = closes or (starts[0], "17:30")
    return {
        "event": event.pk,
        "layout": layout.pk,
        "starts_at_0": starts[0],
        "starts_at_1": starts[1],
        "sales_open_at_0": opens[0],
        "sales_open_at_1": opens[1],
        "sales_close_at_0": closes[0],
        "sales_close_at_1": closes[1],
        "status": Performance.Status.SCHEDULED,
    }


def _aware(text: str) -> dt.datetime:
    return timezone.make_aware(dt.datetime.strptime(text, "%Y-%m-%d %H:%M"))


# --- 1. access ---------------------------------------------------------------


def _admin_urls(performance):
    layout = performance.layout
    seat = layout.seats.first()
    event = performance.event
    venue = event.venue
    return {
        "venue changelist": (reverse("admin:events_venue_changelist"), venue.name),
        "venue change": (reverse("admin:events_venue_change", args=[venue.pk]), venue.name),
        "layout changelist": (reverse("admin:events_seatlayout_changelist"), layout.name),
        "layout change": (reverse("admin:events_seatlayout_change", args=[layout.pk]), layout.name),
        "seat changelist": (reverse("admin:events_seat_changelist"), seat.label),
        "seat change": (reverse("admin:events_seat_change", args=[seat.pk]), seat.label),
        "event changelist": (reverse("admin:events_event_changelist"), event.title),
        "event change": (reverse("admin:events_event_change", args=[event.pk]), event.title),
        "performance changelist": (reverse("admin:events_performance_changelist"), str(performance)),
        "performance change": (reverse("admin:events_performance_change", args=[performance.pk]), str(performance)),
        "performance add": (reverse("admin:events_performance_add"), "Add performance"),
        "performance duplicate": (reverse("admin:events_performance_duplicate", args=[performance.pk]), "New dates"),
        "layout build": (reverse("admin:events_seatlayout_build", args=[layout.pk]), "Layout description"),
        "layout preview": (reverse("admin:events_seatlayout_preview", args=[layout.pk]), SEATMAP),
    }


PAGES = [
    "venue changelist",
    "venue change",
    "layout changelist",
    "layout change",
    "seat changelist",
    "seat change",
    "event changelist",
    "event change",
    "performance changelist",
    "performance change",
    "performance add",
    "performance duplicate",
    "layout build",
    "layout preview",
]


@pytest.mark.parametrize("page", PAGES)
def test_staff_sees_admin_page(staff_client, performance, page):
    url, expected = _admin_urls(performance)[page]
    response = staff_client.get(url)
    assert response.status_code == 200
    assert expected in response.content.decode()


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_is_sent_to_admin_login(client, performance, page):
    url, _expected = _admin_urls(performance)[page]
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert "next=" in response.url


@pytest.mark.parametrize("page", PAGES)
def test_customer_is_sent_to_admin_login(client, performance, page):
    customer = UserFactory()
    client.force_login(customer)
    url, _expected = _admin_urls(performance)[page]
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    login_page = client.get(response.url).content.decode()
    assert f"You are authenticated as {customer.email}, but are not authorized to access this page" in login_page


@pytest.mark.parametrize("url_name", ["admin:events_seatlayout_build", "admin:events_seatlayout_preview"])
def test_staff_without_layout_permissions_cannot_use_layout_views(client, hall, url_name):
    client.force_login(UserFactory(is_staff=True))
    response = client.get(reverse(url_name, args=[hall.pk]))
    assert response.status_code == 403


def test_staff_with_view_permission_sees_preview_but_not_builder(client, hall):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_seatlayout"))
    client.force_login(viewer)
    assert SEATMAP in client.get(reverse("admin:events_seatlayout_preview", args=[hall.pk])).content.decode()
    response = client.post(_build_url(hall), {"spec": GOOD_SPEC, "generate": "Generate"})
    assert response.status_code == 403
    assert hall.seats.count() == 15


def test_staff_without_add_permission_cannot_duplicate(client, performance):
    client.force_login(UserFactory(is_staff=True))
    response = client.post(
        reverse("admin:events_performance_duplicate", args=[performance.pk]), {"dates": "2030-01-05"}
    )
    assert response.status_code == 403
    assert Performance.objects.count() == 1


def test_layout_changelist_counts_seats_and_standing_places(staff_client, hall):
    LayoutFactory(venue=hall.venue)  # 30 seats, no standing zone
    html = staff_client.get(reverse("admin:events_seatlayout_changelist")).content.decode()
    assert _column(html, hall.pk, "seat_count") == "15"
    assert _column(html, hall.pk, "standing_capacity") == "4"


def test_venue_changelist_counts_halls(staff_client, hall):
    LayoutFactory(venue=hall.venue)
    empty = VenueFactory()
    html = staff_client.get(reverse("admin:events_venue_changelist")).content.decode()
    assert _column(html, hall.venue.pk, "layout_count") == "2"
    assert _column(html, empty.pk, "layout_count") == "0"


# --- 2. inventory columns ----------------------------------------------------


@pytest.fixture
def mixed_inventory(performance):
    """3 sold, 2 held, 1 expired hold, 1 blocked; the other 12 available."""
    now = timezone.now()
    ids = list(InventoryItem.objects.filter(performance=performance).order_by("id").values_list("id", flat=True))
    InventoryItem.objects.filter(id__in=ids[0:3]).update(status=InventoryItem.Status.SOLD)
    InventoryItem.objects.filter(id__in=ids[3:5]).update(
        status=InventoryItem.Status.HELD, held_until=now + dt.timedelta(minutes=10)
    )
    InventoryItem.objects.filter(id__in=ids[5:6]).update(
        status=InventoryItem.Status.HELD, held_until=now - dt.timedelta(minutes=1)
    )
    InventoryItem.objects.filter(id__in=ids[6:7]).update(status=InventoryItem.Status.BLOCKED)
    return performance


EXPECTED_COUNTS = {"sold": 3, "held": 2, "free": 13, "blocked": 1}


def test_performance_changelist_shows_inventory_counts(staff_client, mixed_inventory):
    other = PerformanceFactory()  # untouched: everything free
    html = staff_client.get(reverse("admin:events_performance_changelist")).content.decode()
    for column, expected in EXPECTED_COUNTS.items():
        assert _column(html, mixed_inventory.pk, column) == str(expected), column
    assert _column(html, other.pk, "free") == "30"
    assert _column(html, other.pk, "sold") == "0"


def test_performance_admin_queryset_annotations_use_lazy_expiry(rf, staff, mixed_inventory):
    from django.contrib.admin.sites import site

    request = rf.get("/")
    request.user = staff
    model_admin = PerformanceAdmin(Performance, site)
    row = model_admin.get_queryset(request).get(pk=mixed_inventory.pk)
    assert {name: getattr(model_admin, name)(row) for name in EXPECTED_COUNTS} == EXPECTED_COUNTS


# --- 3. query count ----------------------------------------------------------


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("admin:events_performance_changelist"))
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_performance_changelist_query_count_is_constant(staff_client, hall):
    event = EventFactory(venue=hall.venue, grades=[("R", 1), ("S", 1), ("ST", 1)])
    PerformanceFactory()
    PerformanceFactory(event=event, layout=hall)
    staff_client.get(reverse("admin:events_performance_changelist"))  # warm caches (content types, session)
    few = _changelist_queries(staff_client)
    for _i in range(3):
        PerformanceFactory()
    PerformanceFactory(event=event, layout=hall, starts_at=timezone.now() + dt.timedelta(days=20))
    assert Performance.objects.count() == 6
    assert _changelist_queries(staff_client) == few


# --- 4. bulk actions on performances -----------------------------------------


@pytest.fixture
def three_performances(performance):
    """The fixture's performance, closed, plus a scheduled and a cancelled one."""
    Performance.objects.filter(pk=performance.pk).update(status=Performance.Status.CLOSED)
    scheduled = PerformanceFactory(event=performance.event, layout=performance.layout, status="scheduled")
    cancelled = PerformanceFactory(event=performance.event, layout=performance.layout, status="cancelled")
    return performance, scheduled, cancelled


def test_open_sales_leaves_cancelled_alone_with_a_warning(staff_client, three_performances):
    closed, scheduled, cancelled = three_performances
    response = _action(staff_client, "admin:events_performance_changelist", "open_sales", three_performances)
    assert response.status_code == 302
    for obj in three_performances:
        obj.refresh_from_db()
    assert closed.status == scheduled.status == Performance.Status.ON_SALE
    assert cancelled.status == Performance.Status.CANCELLED
    sent = _messages(response)
    assert (messages.INFO, "2 performances are on sale.") in sent
    assert (
        messages.WARNING,
        "1 performance was left alone: it is cancelled, sold out, started, or its sales window has closed "
        "(change “sales close at” first).",
    ) in sent


def test_open_sales_without_skips_gives_no_warning(staff_client, three_performances):
    _closed, scheduled, _cancelled = three_performances
    response = _action(staff_client, "admin:events_performance_changelist", "open_sales", [scheduled])
    scheduled.refresh_from_db()
    assert scheduled.status == Performance.Status.ON_SALE
    assert _messages(response) == [(messages.INFO, "1 performance is on sale.")]


def test_open_sales_leaves_started_performances_and_closed_windows_alone(staff_client, performance):
    now = timezone.now()
    started = PerformanceFactory(event=performance.event, layout=performance.layout, status="closed")
    Performance.objects.filter(pk=started.pk).update(
        starts_at=now - dt.timedelta(hours=1),
        sales_open_at=now - dt.timedelta(days=3),
        sales_close_at=now - dt.timedelta(hours=2),
    )
    window_closed = PerformanceFactory(event=performance.event, layout=performance.layout, status="closed")
    Performance.objects.filter(pk=window_closed.pk).update(
        sales_open_at=now - dt.timedelta(days=2), sales_close_at=now - dt.timedelta(minutes=1)
    )
    response = _action(staff_client, "admin:events_performance_changelist", "open_sales", [started, window_closed])
    assert set(Performance.objects.filter(pk__in=[started.pk, window_closed.pk]).values_list("status", flat=True)) == {
        "closed"
    }
    sent = _message_texts(response)
    assert "0 performances are on sale." in sent
    assert any("2 performances were left alone" in text for text in sent)


def test_close_sales(staff_client, three_performances):
    closed, scheduled, cancelled = three_performances
    Performance.objects.filter(pk=closed.pk).update(status=Performance.Status.ON_SALE)
    response = _action(staff_client, "admin:events_performance_changelist", "close_sales", three_performances)
    assert response.status_code == 302
    statuses = dict(Performance.objects.values_list("pk", "status"))
    assert statuses == {
        closed.pk: Performance.Status.CLOSED,
        scheduled.pk: Performance.Status.CLOSED,
        cancelled.pk: Performance.Status.CANCELLED,
    }
    assert "2 performances closed." in _message_texts(response)


def test_a_copy_whose_sales_window_has_closed_already_is_pointed_out(staff_client, performance):
    now = timezone.now()
    Performance.objects.filter(pk=performance.pk).update(
        starts_at=now + dt.timedelta(days=10), sales_close_at=now + dt.timedelta(days=9, hours=21)
    )  # sales close three hours before the start
    soon = timezone.localtime(now + dt.timedelta(hours=2)).strftime("%Y-%m-%d %H:%M")
    url = reverse("admin:events_performance_duplicate", args=[performance.pk])
    response = staff_client.post(url, {"dates": soon})
    (copy,) = Performance.objects.exclude(pk=performance.pk)
    assert copy.sales_close_at <= now
    assert any(
        text.startswith("Sales are already closed for") and str(copy) in text for text in _message_texts(response)
    )


def test_duplicate_action_needs_exactly_one_performance(staff_client, three_performances):
    response = _action(staff_client, "admin:events_performance_changelist", "duplicate", three_performances[:2])
    assert response.status_code == 302
    assert "duplicate" not in response.url
    assert (messages.ERROR, "Select exactly one performance to duplicate.") in _messages(response)
    assert Performance.objects.count() == 3


def test_duplicate_action_with_one_opens_the_duplicate_page(staff_client, performance):
    response = _action(staff_client, "admin:events_performance_changelist", "duplicate", [performance])
    assert response.status_code == 302
    assert response.url == reverse("admin:events_performance_duplicate", args=[performance.pk])


def test_duplicate_creates_performances_with_full_inventory(staff_client, performance):
    Performance.objects.filter(pk=performance.pk).update(waiting_room_rate=600)
    url = reverse("admin:events_performance_duplicate", args=[performance.pk])
    response = staff_client.post(url, {"dates": "2030-01-05\n\n  2030-01-06 14:00  \n"})

    assert response.status_code == 302
    assert response.url == reverse("admin:events_performance_changelist") + f"?event__id__exact={performance.event_id}"
    assert "Created 2 performances." in _message_texts(response)
    copies = list(Performance.objects.exclude(pk=performance.pk).order_by("starts_at"))
    assert len(copies) == 2

    original_local = timezone.localtime(performance.starts_at)
    first_local = timezone.localtime(copies[0].starts_at)
    assert first_local.date() == dt.date(2030, 1, 5)
    assert first_local.time() == original_local.time()
    assert copies[1].starts_at == _aware("2030-01-06 14:00")

    for copy in copies:
        shift = copy.starts_at - performance.starts_at
        assert copy.event_id == performance.event_id
        assert copy.layout_id == performance.layout_id
        assert copy.status == Performance.Status.SCHEDULED
        assert copy.waiting_room_rate == 600
        assert copy.sales_open_at == performance.sales_open_at + shift
        assert copy.sales_close_at == performance.sales_close_at + shift
        items = InventoryItem.objects.filter(performance=copy)
        assert items.count() == PERFORMANCE_PLACES == InventoryItem.objects.filter(performance=performance).count()
        assert items.filter(status=InventoryItem.Status.AVAILABLE).count() == PERFORMANCE_PLACES


def _original_date_line(performance) -> str:
    return f"{timezone.localtime(performance.starts_at):%Y-%m-%d}"


@pytest.mark.parametrize(
    ("dates", "error"),
    [
        ("yesterday", "“yesterday” is not a date like 2026-12-24 or 2026-12-24 14:00."),
        ("2030-01-05\n2020-01-05 10:00", "2020-01-05 10:00 is in the past."),
        ("2030-01-05\n2030-02-30", "“2030-02-30” is not a date"),
        ("2030-01-05 19:00\n2030-01-05 19:00", "2030-01-05 19:00 is listed twice or is the original date."),
        ("ORIGINAL", "is listed twice or is the original date."),
        ("", "This field is required."),
        ("  \n \n", "This field is required."),
    ],
)
def test_duplicate_rejects_bad_dates_and_creates_nothing(staff_client, performance, dates, error):
    if dates == "ORIGINAL":
        dates = _original_date_line(performance)
    response = staff_client.post(reverse("admin:events_performance_duplicate", args=[performance.pk]), {"dates": dates})
    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors["dates"])
    assert error.replace("“", "").replace("”", "")[:20] in response.content.decode().replace("“", "").replace("”", "")
    assert Performance.objects.count() == 1
    assert InventoryItem.objects.count() == PERFORMANCE_PLACES


# --- 5. adding and changing a performance ------------------------------------


@pytest.fixture
def priced_event(hall):
    return EventFactory(venue=hall.venue, grades=[("R", 120000), ("S", 90000), ("ST", 80000)])


def test_add_performance_creates_its_inventory(staff_client, hall, priced_event):
    response = staff_client.post(reverse("admin:events_performance_add"), _performance_form(priced_event, hall))
    assert response.status_code == 302, _errors(response)
    performance = Performance.objects.get()
    assert performance.starts_at == _aware("2030-01-05 19:30")
    assert performance.sales_open_at == _aware("2029-12-01 10:00")
    assert performance.sales_close_at == _aware("2030-01-05 17:30")
    items = InventoryItem.objects.filter(performance=performance)
    assert items.count() == PERFORMANCE_PLACES
    assert set(items.values_list("price_grade__code", flat=True)) == {"R", "S", "ST"}
    assert "Created 19 places for sale." in _message_texts(response)


def test_add_form_suggests_a_layout_of_the_events_venue(staff_client, hall, priced_event):
    LayoutFactory()  # another venue's hall
    response = staff_client.get(reverse("admin:events_performance_add") + f"?event={priced_event.pk}")
    assert response.context["adminform"].form.initial["layout"] == hall.pk


def _assert_add_rejected(client, data, *messages_expected):
    response = client.post(reverse("admin:events_performance_add"), data)
    assert response.status_code == 200
    errors = _errors(response)
    for expected in messages_expected:
        assert expected in errors
    assert Performance.objects.count() == 0
    assert InventoryItem.objects.count() == 0
    return errors


def test_add_rejects_a_layout_of_another_venue(staff_client, priced_event):
    elsewhere = LayoutFactory()  # grade R only, which the event prices
    _assert_add_rejected(
        staff_client,
        _performance_form(priced_event, elsewhere),
        f"This layout belongs to {elsewhere.venue.name}, not to the event's venue {priced_event.venue.name}.",
    )


def test_add_rejects_an_event_missing_a_grade_of_the_layout(staff_client, hall):
    event = EventFactory(venue=hall.venue, grades=[("R", 120000), ("S", 90000)])
    errors = _assert_add_rejected(
        staff_client, _performance_form(event, hall), "no price grade for these grade codes of the layout: ST."
    )
    assert "S," not in errors


def test_add_rejects_a_layout_without_seats(staff_client, priced_event, hall):
    empty = SeatLayout.objects.create(venue=hall.venue, name="Empty hall")
    _assert_add_rejected(staff_client, _performance_form(priced_event, empty), "This layout has no seats yet.")


def test_add_rejects_sales_closing_before_they_open(staff_client, hall, priced_event):
    data = _performance_form(priced_event, hall, opens=("2030-01-02", "10:00"), closes=("2030-01-01", "10:00"))
    _assert_add_rejected(staff_client, data, "Sales must close after they open.")


def test_add_rejects_sales_closing_after_the_start(staff_client, hall, priced_event):
    data = _performance_form(priced_event, hall, closes=("2030-01-05", "20:00"))
    _assert_add_rejected(staff_client, data, "Sales must close no later than the performance starts.")


def test_change_page_shows_layout_read_only(staff_client, performance):
    response = staff_client.get(reverse("admin:events_performance_change", args=[performance.pk]))
    form = response.context["adminform"].form
    assert "layout" not in form.fields
    assert "event" in form.fields
    html = response.content.decode()
    assert 'name="layout"' not in html
    assert str(performance.layout) in html


def test_changing_a_performance_keeps_its_layout(staff_client, performance):
    other_hall = LayoutFactory(venue=performance.event.venue)
    starts = timezone.localtime(performance.starts_at)
    opens = timezone.localtime(performance.sales_open_at)
    closes = timezone.localtime(performance.sales_close_at)
    data = {
        "event": performance.event_id,
        "layout": other_hall.pk,
        "starts_at_0": f"{starts:%Y-%m-%d}",
        "starts_at_1": f"{starts:%H:%M}",
        "sales_open_at_0": f"{opens:%Y-%m-%d}",
        "sales_open_at_1": f"{opens:%H:%M}",
        "sales_close_at_0": f"{closes:%Y-%m-%d}",
        "sales_close_at_1": f"{closes:%H:%M}",
        "status": Performance.Status.CLOSED,
    }
    response = staff_client.post(reverse("admin:events_performance_change", args=[performance.pk]), data)
    assert response.status_code == 302, _errors(response)
    performance.refresh_from_db()
    assert performance.status == Performance.Status.CLOSED
    assert performance.layout_id != other_hall.pk
    assert InventoryItem.objects.filter(performance=performance).count() == PERFORMANCE_PLACES


# --- 6. events ---------------------------------------------------------------


def _event_form(event, grades, existing=(), discounts=()):
    """POST data for the event change page: `existing` grades keep their ids;
    `discounts` are new discount rows (field: value, `grades` a list of ids)."""
    data = {
        "title": event.title,
        "slug": event.slug,
        "category": event.category,
        "venue": event.venue_id,
        "status": event.status,
        "summary": "",
        "description": "",
        "age_rating": event.age_rating,
        "running_time": event.running_time,
        "ticket_limit": event.ticket_limit,
        "hold_minutes": event.hold_minutes,
        "booking_fee": event.booking_fee,
        "grades-TOTAL_FORMS": len(existing) + len(grades),
        "grades-INITIAL_FORMS": len(existing),
        "grades-MIN_NUM_FORMS": 0,
        "grades-MAX_NUM_FORMS": 1000,
        "performances-TOTAL_FORMS": 0,
        "performances-INITIAL_FORMS": 0,
        "performances-MIN_NUM_FORMS": 0,
        "performances-MAX_NUM_FORMS": 0,
        "discounts-TOTAL_FORMS": len(discounts),
        "discounts-INITIAL_FORMS": 0,
        "discounts-MIN_NUM_FORMS": 0,
        "discounts-MAX_NUM_FORMS": 1000,
    }
    for index, row in enumerate(discounts):
        row = {"id": "", "conditions": "", "per_booking": "", "position": 0, "is_active": "on", **row}
        data.update({f"discounts-{index}-{key}": value for key, value in row.items()})
        data[f"discounts-{index}-event"] = event.pk
    rows = [
        {"id": g.pk, "code": g.code, "name": g.name, "price": g.price, "colour": g.colour, "position": g.position}
        for g in existing
    ] + [{"id": "", "name": "", "colour": "#123456", "position": 0, **g} for g in grades]
    for index, row in enumerate(rows):
        data.update({f"grades-{index}-{key}": value for key, value in row.items()})
        data[f"grades-{index}-event"] = event.pk
    return data


@pytest.fixture
def draft_event(db):
    return EventFactory(status=Event.Status.DRAFT, grades=[("R", 100000)])


def test_event_inline_adds_a_price_grade(staff_client, draft_event):
    existing = list(draft_event.grades.all())
    data = _event_form(draft_event, [{"code": "S", "price": 50000}], existing=existing)
    response = staff_client.post(reverse("admin:events_event_change", args=[draft_event.pk]), data)
    assert response.status_code == 302, _errors(response)
    assert dict(draft_event.grades.values_list("code", "price")) == {"R": 100000, "S": 50000}


def test_event_inline_adds_a_discount_for_some_grades(staff_client, draft_event):
    existing = list(draft_event.grades.all())
    r_grade = existing[0]
    row = {"name": "장애인 할인", "percent_off": 50, "amount_off": "", "grades": [r_grade.pk], "per_booking": 2}
    data = _event_form(draft_event, [], existing=existing, discounts=[row])
    response = staff_client.post(reverse("admin:events_event_change", args=[draft_event.pk]), data)
    assert response.status_code == 302, _errors(response)
    discount = draft_event.discounts.get()
    assert (discount.name, discount.percent_off, discount.per_booking) == ("장애인 할인", 50, 2)
    assert list(discount.grades.all()) == [r_grade]


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"percent_off": 10, "amount_off": 1000}, "either a percentage or an amount off, not both"),
        ({"percent_off": "", "amount_off": ""}, "either a percentage or an amount off, not both"),
        ({"percent_off": 95, "amount_off": ""}, "less than or equal to 90"),
        ({"percent_off": "", "amount_off": 100000}, "less than the cheapest grade it applies to (₩100,000)"),
    ],
)
def test_event_inline_refuses_a_discount_that_cannot_be_sold(staff_client, draft_event, row, error):
    data = _event_form(draft_event, [], existing=list(draft_event.grades.all()), discounts=[{"name": "할인", **row}])
    response = staff_client.post(reverse("admin:events_event_change", args=[draft_event.pk]), data)
    assert response.status_code == 200
    assert error in _errors(response)
    assert not draft_event.discounts.exists()


def test_event_inline_offers_only_the_events_own_grades_for_a_discount(staff_client, draft_event):
    EventFactory(grades=[("VIP", 1)])
    response = staff_client.get(reverse("admin:events_event_change", args=[draft_event.pk]))
    formset = next(f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "discounts")
    assert list(formset.formset.empty_form.fields["grades"].queryset) == list(draft_event.grades.all())


def test_event_inline_rejects_a_negative_price(staff_client, draft_event):
    data = _event_form(draft_event, [{"code": "S", "price": -1}], existing=list(draft_event.grades.all()))
    response = staff_client.post(reverse("admin:events_event_change", args=[draft_event.pk]), data)
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0." in _errors(response)
    assert list(draft_event.grades.values_list("code", flat=True)) == ["R"]


def test_event_inline_rejects_a_code_twice_among_new_grades(staff_client, draft_event):
    data = _event_form(draft_event, [{"code": "S", "price": 1}, {"code": "S", "price": 2}])
    response = staff_client.post(reverse("admin:events_event_change", args=[draft_event.pk]), data)
    assert response.status_code == 200
    assert "Please correct the duplicate data for code." in _errors(response)
    assert list(draft_event.grades.values_list("code", flat=True)) == ["R"]


def test_event_inline_rejects_a_code_the_event_already_has(staff_client, draft_event):
    existing = list(draft_event.grades.all())
    data = _event_form(draft_event, [{"code": "R", "price": 5}], existing=existing)
    response = staff_client.post(reverse("admin:events_event_change", args=[draft_event.pk]), data)
    assert response.status_code == 200
    assert "Please correct the duplicate data for code." in _errors(response)
    assert list(draft_event.grades.values_list("code", "price")) == [("R", 100000)]


def test_an_event_with_performances_keeps_its_venue(staff_client, performance):
    event = performance.event
    data = _event_form(event, [], existing=list(event.grades.all()))
    data.update(
        {
            "venue": VenueFactory().pk,
            "performances-TOTAL_FORMS": 1,
            "performances-INITIAL_FORMS": 1,
            "performances-0-id": performance.pk,
            "performances-0-event": event.pk,
        }
    )
    response = staff_client.post(reverse("admin:events_event_change", args=[event.pk]), data)
    assert response.status_code == 200
    assert "This event has performances in the halls of" in _errors(response)
    event.refresh_from_db()
    assert event.venue_id == performance.layout.venue_id


def test_a_grade_that_prices_places_is_not_deleted_and_the_refusal_is_short(staff_client, performance):
    event = performance.event
    grades = list(event.grades.order_by("pk"))
    data = _event_form(event, [], existing=grades)
    data["grades-0-DELETE"] = "on"
    response = staff_client.post(reverse("admin:events_event_change", args=[event.pk]), data)
    assert response.status_code == 200
    errors = _errors(response)
    assert "so it cannot be deleted; change its name or price instead." in errors
    assert "inventory item" not in errors and len(errors) < 2000
    assert event.grades.count() == len(grades)


def test_publish_and_unpublish_actions(staff_client, draft_event):
    other = EventFactory(status=Event.Status.DRAFT)
    untouched = EventFactory(status=Event.Status.DRAFT)
    response = _action(staff_client, "admin:events_event_changelist", "publish", [draft_event, other])
    assert "2 events published." in _message_texts(response)
    statuses = dict(Event.objects.values_list("pk", "status"))
    assert statuses == {draft_event.pk: "published", other.pk: "published", untouched.pk: "draft"}

    response = _action(staff_client, "admin:events_event_changelist", "unpublish", [other])
    assert "1 event unpublished." in _message_texts(response)
    assert Event.objects.get(pk=other.pk).status == Event.Status.DRAFT
    assert Event.objects.get(pk=draft_event.pk).status == Event.Status.PUBLISHED


def test_event_changelist_counts_performances(staff_client, performance):
    PerformanceFactory(
        event=performance.event, layout=performance.layout, starts_at=timezone.now() + dt.timedelta(days=3)
    )
    html = staff_client.get(reverse("admin:events_event_changelist")).content.decode()
    assert _column(html, performance.event_id, "performance_count") == "2"


# --- 7. layout builder -------------------------------------------------------

GOOD_SPEC = """stage "Main stage"
section "A" floor=1F x=0 y=0
rows A-D seats 1-8 grade=R aisle=4
standing "Floor" x=0 y=200 w=200 h=80 capacity=50 grade=ST"""

FAULTY_SPECS = {
    "overlap": (
        'section "A" x=0 y=0\nrows A-C seats 1-10 grade=R\nsection "B" x=100 y=0\nrows A-C seats 1-10 grade=R',
        "line 3: section B overlaps section A; move it with x= and y=.",
    ),
    "unknown option": (
        'section "A" x=0 y=0 colour=red\nrows A-C seats 1-10 grade=R',
        "line 1: Unknown option “colour=red”",
    ),
    "missing grade": (
        'section "A" x=0 y=0\n\nrows A-C seats 1-10',
        "line 3: grade= is required (a code such as VIP, R or S).",
    ),
}


def _build_url(layout):
    return reverse("admin:events_seatlayout_build", args=[layout.pk])


def _seat_ids(layout):
    return set(Seat.objects.filter(layout=layout).values_list("id", flat=True))


def test_builder_shows_the_saved_description(staff_client, hall):
    response = staff_client.get(_build_url(hall))
    assert response.status_code == 200
    assert response.context["form"]["spec"].value() == hall.spec
    html = response.content.decode()
    assert "rows A-B seats 1-5 grade=R" in html
    assert 'name="generate"' in html
    assert SEATMAP not in html


def test_builder_preview_draws_the_plan_and_saves_nothing(staff_client, hall):
    before = _seat_ids(hall)
    response = staff_client.post(_build_url(hall), {"spec": GOOD_SPEC, "preview": "Preview"})
    assert response.status_code == 200
    html = response.content.decode()
    assert SEATMAP in html
    assert "Main stage" in html
    assert "2 sections, 32 seats, 50 standing places" in html
    assert _seat_ids(hall) == before
    hall_after = SeatLayout.objects.get(pk=hall.pk)
    assert hall_after.spec == hall.spec
    assert hall_after.stage_label == hall.stage_label


def test_builder_generate_replaces_the_seats(staff_client, hall):
    before = _seat_ids(hall)
    response = staff_client.post(_build_url(hall), {"spec": GOOD_SPEC, "generate": "Generate"})
    assert response.status_code == 302
    assert response.url == reverse("admin:events_seatlayout_preview", args=[hall.pk])
    assert "Generated 32 seats and 50 standing places." in _message_texts(response)

    hall.refresh_from_db()
    assert hall.spec == GOOD_SPEC
    assert hall.stage_label == "Main stage"
    assert hall.seats.count() == 32
    assert _seat_ids(hall).isdisjoint(before)
    assert list(hall.sections.values_list("name", "kind", "capacity")) == [
        ("A", "seated", 0),
        ("Floor", "standing", 50),
    ]
    assert set(hall.seats.values_list("grade_code", flat=True)) == {"R"}

    preview = staff_client.get(response.url).content.decode()
    assert SEATMAP in preview
    assert "32 seats." in preview


@pytest.mark.parametrize("fault", FAULTY_SPECS)
@pytest.mark.parametrize("button", ["preview", "generate"])
def test_builder_reports_faulty_description_with_line_numbers(staff_client, hall, fault, button):
    spec, error = FAULTY_SPECS[fault]
    before = _seat_ids(hall)
    response = staff_client.post(_build_url(hall), {"spec": spec, button: "go"})
    assert response.status_code == 200
    assert any(error in e for e in response.context["form"].errors["spec"])
    html = response.content.decode()
    assert error.replace("“", "").replace("”", "")[:20] in html.replace("“", "").replace("”", "")
    assert SEATMAP not in html
    assert _seat_ids(hall) == before
    assert SeatLayout.objects.get(pk=hall.pk).spec == hall.spec


def test_builder_refuses_to_regenerate_a_layout_in_use(staff_client, performance):
    hall = performance.layout
    before = _seat_ids(hall)
    page = staff_client.get(_build_url(hall)).content.decode()
    assert "Performances already sell this layout" in page
    assert 'name="generate"' not in page

    response = staff_client.post(_build_url(hall), {"spec": GOOD_SPEC, "generate": "Generate"})
    assert response.status_code == 200
    assert "Performances already use this layout, so its seats cannot be regenerated." in " ".join(
        response.context["form"].non_field_errors()
    )
    assert "Performances already use this layout" in response.content.decode()
    assert _seat_ids(hall) == before
    assert InventoryItem.objects.filter(performance=performance).count() == PERFORMANCE_PLACES


def test_builder_preview_still_works_for_a_layout_in_use(staff_client, performance):
    response = staff_client.post(_build_url(performance.layout), {"spec": GOOD_SPEC, "preview": "Preview"})
    assert SEATMAP in response.content.decode()
    assert _seat_ids(performance.layout) == set(performance.layout.seats.values_list("id", flat=True))


def test_preview_page_draws_a_generated_layout(staff_client, hall):
    response = staff_client.get(reverse("admin:events_seatlayout_preview", args=[hall.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count(SEATMAP) == 1
    assert "15 seats." in html
    assert "스탠딩" in html
    assert _build_url(hall) in html


# --- 8. seats ----------------------------------------------------------------


def _seat_form(seat, **changes):
    data = {
        "layout": seat.layout_id,
        "section": seat.section_id,
        "row": "Z",
        "number": 99,
        "label": "new seat",
        "grade_code": "R",
        "x": 9999,
        "y": 9999,
    }
    data.update(changes)
    return data


def test_seat_add_accepts_a_free_position(staff_client, hall):
    seat = hall.seats.first()
    response = staff_client.post(reverse("admin:events_seat_add"), _seat_form(seat))
    assert response.status_code == 302, _errors(response)
    assert hall.seats.count() == 16


def test_seat_add_rejects_a_taken_position(staff_client, hall):
    seat = hall.seats.first()
    response = staff_client.post(reverse("admin:events_seat_add"), _seat_form(seat, x=seat.x, y=seat.y))
    assert response.status_code == 200
    assert "Another seat of this layout is already drawn at that position." in _errors(response)
    assert hall.seats.count() == 15


def test_seat_add_rejects_a_taken_row_and_number(staff_client, hall):
    seat = hall.seats.first()
    response = staff_client.post(reverse("admin:events_seat_add"), _seat_form(seat, row=seat.row, number=seat.number))
    assert response.status_code == 200
    assert "This section already has a seat with that row and number." in _errors(response)
    assert hall.seats.count() == 15


def test_seat_add_rejects_a_section_of_another_layout(staff_client, hall):
    seat = hall.seats.first()
    foreign_section = LayoutFactory().sections.first()
    response = staff_client.post(reverse("admin:events_seat_add"), _seat_form(seat, section=foreign_section.pk))
    assert response.status_code == 200
    assert "The section belongs to another layout." in _errors(response)
    assert hall.seats.count() == 15


def test_staff_set_a_waiting_room_rate_and_a_zero_rate_is_refused(staff_client, hall, priced_event):
    _assert_add_rejected(
        staff_client,
        {**_performance_form(priced_event, hall), "waiting_room_rate": "0"},
        "Ensure this value is greater than or equal to 1.",
    )
    assert not Performance.objects.exists()

    response = staff_client.post(
        reverse("admin:events_performance_add"), {**_performance_form(priced_event, hall), "waiting_room_rate": "600"}
    )

    assert response.status_code == 302, _errors(response)
    assert Performance.objects.get().waiting_room_rate == 600


def test_the_sections_of_a_layout_in_use_are_read_only(staff_client, performance):
    layout = performance.layout
    page = staff_client.get(reverse("admin:events_seatlayout_change", args=[layout.pk])).content.decode()
    assert 'name="sections-0-capacity"' not in page  # shown, not editable
    section = layout.sections.first()
    data = {
        "venue": layout.venue_id,
        "name": layout.name,
        "stage_label": layout.stage_label,
        "sections-TOTAL_FORMS": 1,
        "sections-INITIAL_FORMS": 1,
        "sections-MIN_NUM_FORMS": 0,
        "sections-MAX_NUM_FORMS": 1000,
        "sections-0-id": section.pk,
        "sections-0-layout": layout.pk,
        "sections-0-name": "renamed",
        "sections-0-capacity": 1,
    }
    staff_client.post(reverse("admin:events_seatlayout_change", args=[layout.pk]), data)
    section.refresh_from_db()
    assert section.name != "renamed"


def test_the_sections_of_a_layout_not_in_use_can_be_edited(staff_client, hall):
    page = staff_client.get(reverse("admin:events_seatlayout_change", args=[hall.pk])).content.decode()
    assert 'name="sections-0-name"' in page


def test_a_performance_entered_by_mistake_is_deleted_with_its_places(staff_client, performance):
    mistake = PerformanceFactory(event=performance.event, layout=performance.layout, status="scheduled")
    places = InventoryItem.objects.filter(performance=mistake).count()
    assert places
    url = reverse("admin:events_performance_delete", args=[mistake.pk])
    page = staff_client.get(url).content.decode()
    assert "Are you sure" in page and str(places) in page
    assert "permission" not in page  # the places are part of it, not objects staff must be allowed to delete
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Performance.objects.filter(pk=mistake.pk).exists()
    assert not InventoryItem.objects.filter(performance_id=mistake.pk).exists()


def test_a_performance_with_bookings_or_on_sale_is_not_deleted(staff_client, performance):
    from reservations.tests.factories import hold

    hold(UserFactory(), performance, "1층 A구역 A열 1번")
    Performance.objects.filter(pk=performance.pk).update(status="closed")
    url = reverse("admin:events_performance_delete", args=[performance.pk])
    page = staff_client.get(url).content.decode()
    assert "it has bookings, and a performance with bookings is not deleted. To call it off" in page
    staff_client.post(url, {"post": "yes"})
    assert Performance.objects.filter(pk=performance.pk).exists()
    on_sale = PerformanceFactory(event=performance.event, layout=performance.layout, status="on_sale")
    url = reverse("admin:events_performance_delete", args=[on_sale.pk])
    assert "is on sale: close its sales first." in staff_client.get(url).content.decode()
    staff_client.post(url, {"post": "yes"})
    assert Performance.objects.filter(pk=on_sale.pk).exists()
    # The service refuses too, whatever page sent it.
    from events import services

    with pytest.raises(ValidationError, match="on sale"):
        services.performance_delete(performance=on_sale)


def test_a_standing_zone_s_capacity_is_bounded_on_the_sections_table_too(staff_client, hall):
    section = hall.sections.get(kind="standing")
    data = {
        "venue": hall.venue_id,
        "name": hall.name,
        "stage_label": hall.stage_label,
        "sections-TOTAL_FORMS": 1,
        "sections-INITIAL_FORMS": 1,
        "sections-MIN_NUM_FORMS": 0,
        "sections-MAX_NUM_FORMS": 1000,
        "sections-0-id": section.pk,
        "sections-0-layout": hall.pk,
        "sections-0-floor": section.floor,
        "sections-0-name": section.name,
        "sections-0-kind": "standing",
        "sections-0-grade_code": section.grade_code,
        "sections-0-capacity": 10**9,
        "sections-0-x": 0,
        "sections-0-y": 0,
        "sections-0-width": 200,
        "sections-0-height": 80,
        "sections-0-position": 0,
    }
    response = staff_client.post(reverse("admin:events_seatlayout_change", args=[hall.pk]), data)
    assert response.status_code == 200 and "Ensure this value is less than or equal to 20000." in _errors(response)
    section.refresh_from_db()
    assert section.capacity != 10**9


def test_performances_are_not_deleted_in_bulk(staff_client, performance):
    page = staff_client.get(reverse("admin:events_performance_changelist")).content.decode()
    assert 'value="delete_selected"' not in page  # one at a time, from its page, where refusals are said


def test_event_inline_refuses_a_grade_code_in_other_letters(staff_client, draft_event):
    data = _event_form(draft_event, [{"code": "r", "price": 50000}], existing=list(draft_event.grades.all()))
    response = staff_client.post(reverse("admin:events_event_change", args=[draft_event.pk]), data)
    assert response.status_code == 200
    assert "r and R are one grade: use one spelling." in _errors(response)
    assert list(draft_event.grades.values_list("code", flat=True)) == ["R"]
