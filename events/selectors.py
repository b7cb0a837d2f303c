"""Reads behind the catalogue pages. Each one runs a fixed number of queries,
however many events, performances or seats there are."""

import datetime as dt
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from cachetools import TLRUCache
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from reservations import hold_sql
from reservations.models import InventoryItem, free_condition, held_condition
from ticketing.compiled import RowFetch

from .layout_builder import LayoutPlan
from .models import Event, Performance, PriceGrade, Seat, SeatLayout, Section

logger = logging.getLogger(__name__)


def published_events() -> QuerySet[Event]:
    """Published events with their first and last upcoming dates and lowest price."""
    now = timezone.now()
    upcoming = Q(performances__starts_at__gt=now) & ~Q(performances__status=Performance.Status.CANCELLED)
    return (
        Event.objects.filter(status=Event.Status.PUBLISHED)
        .select_related("venue")
        .annotate(
            first_date=Min("performances__starts_at", filter=upcoming),
            last_date=Max("performances__starts_at", filter=upcoming),
            # A subquery, not a join: joining grades and performances together would
            # multiply rows and skew the dates above.
            min_price=PriceGrade.objects.filter(event=OuterRef("pk")).order_by("price").values("price")[:1],
            on_sale=Exists(Performance.objects.selling(now).filter(event=OuterRef("pk"))),
        )
    )


_clock = time.monotonic  # the kept values' clock alone (tests move it)
_NOT_KEPT = object()


class _KeptPerProcess:
    """A bounded cache of this process's, shared by its threads (cachetools' caches are
    not thread-safe), each value kept for `seconds()` as read when it was stored."""

    def __init__(self, *, maxsize: int, seconds):
        self._cache = TLRUCache(maxsize=maxsize, ttu=lambda _key, _value, now: now + seconds(), timer=lambda: _clock())
        self._lock = threading.Lock()

    def get_or_make(self, key, make):
        with self._lock:
            value = self._cache.get(key, _NOT_KEPT)
        if value is _NOT_KEPT:
            value = make()
            self.put(key, value)
        return value

    def put(self, key, value) -> None:
        with self._lock:
            self._cache[key] = value

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


_PUBLISHED_PERFORMANCE = RowFetch(Performance, "event", where="t.id = %s AND r0.slug = %s AND r0.status = %s")
# The rows of the performances being held right now (a missing one too).
_PERFORMANCE_ROWS = _KeptPerProcess(maxsize=256, seconds=lambda: settings.TICKETING_PERFORMANCE_SECONDS)


def published_performance(*, slug: str, pk: int) -> Performance | None:
    """The performance with its event, if the event is published: what a hold and the
    waiting room need, read by a statement compiled once.

    Every on-sale click asks, for the same row, so each process keeps the row for
    TICKETING_PERFORMANCE_SECONDS (1 s): a staff edit (sales closed, a new waiting-room
    rate) reaches holds within that second. Each caller gets instances of its own.
    """
    params = [pk, slug, Event.Status.PUBLISHED]
    if settings.TICKETING_PERFORMANCE_SECONDS <= 0:
        return _PUBLISHED_PERFORMANCE.one(params)
    # The database's name in the key: one process's rows of two databases (tests) never mix.
    key = (connection.settings_dict["NAME"], pk, slug)
    values = _PERFORMANCE_ROWS.get_or_make(key, lambda: _PUBLISHED_PERFORMANCE.values(params))
    return None if values is None else _PUBLISHED_PERFORMANCE.build(values)


def events_on_sale(*, limit: int = 8) -> list[Event]:
    return list(published_events().filter(on_sale=True).order_by("first_date")[:limit])


def events_upcoming(*, limit: int = 8) -> list[Event]:
    """Events whose sales have not opened yet: what to look forward to."""
    now = timezone.now()
    soon = Performance.objects.visible().filter(event=OuterRef("pk"), sales_open_at__gt=now)
    return list(published_events().filter(Exists(soon), on_sale=False).order_by("first_date")[:limit])


def events_search(
    *,
    query: str = "",
    category: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[Event]:
    """Published events matching the list page's search box and filters."""
    events = published_events()
    if query:
        events = events.filter(Q(title__icontains=query) | Q(venue__name__icontains=query))
    if category:
        events = events.filter(category=category)
    if date_from or date_to:
        dated = Performance.objects.visible().filter(event=OuterRef("pk"))
        if date_from:
            dated = dated.filter(starts_at__gte=_start_of_day(date_from))
        if date_to:
            dated = dated.filter(starts_at__lt=_start_of_day(date_to + dt.timedelta(days=1)))
        events = events.filter(Exists(dated))
    else:
        # Without a date filter the list shows what can still be seen.
        events = events.filter(first_date__isnull=False)
    return events.order_by("first_date", "title")


def _start_of_day(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@dataclass
class GradeAvailability:
    grade: PriceGrade
    free: int


def event_performances(*, event: Event) -> list[Performance]:
    """The event's visible performances, each with `.availability` per grade.

    Three queries: the performances, the grades and, at most every few seconds, one
    grouped count of free places.
    """
    now = timezone.now()
    performances = list(event.performances.exclude(status=Performance.Status.CANCELLED).order_by("starts_at"))
    for performance in performances:
        performance.event = event
        performance.state = performance.sales_state(now)
    # Seats left matter only where they can still be bought; an ended or closed
    # performance shows its state instead.
    counted = tuple(p.id for p in performances if p.state in ("on_sale", "upcoming"))
    free = _free_counts(event, counted, now)
    grades = sorted(event.grades.all(), key=lambda g: (g.position, -g.price))
    for performance in performances:
        by_grade = free.get(performance.id, {})
        performance.availability = [
            GradeAvailability(grade=grade, free=by_grade[grade.id]) for grade in grades if grade.id in by_grade
        ]
        performance.free_total = sum(a.free for a in performance.availability)
    return performances


def _free_counts(event: Event, performance_ids: tuple[int, ...], now: dt.datetime) -> dict[int, dict[int, int]]:
    """Free places per performance and grade, counted at most every few seconds.

    The count reads every inventory row of the performances: for a long run (123
    performances of a 2,412-place hall) ~300,000 rows and ~100 ms of MariaDB, too much
    for each view of the event's page on on-sale day. These numbers are a guide; the
    seat map and every hold read the live inventory (docs/benchmarks.md).
    """
    if not performance_ids:
        return {}
    seconds = settings.TICKETING_EVENT_FREE_COUNTS_SECONDS
    key = f"event-free-counts:{connection.settings_dict['NAME']}:{event.pk}"
    if seconds:
        try:
            cached = cache.get(key)
        except Exception:
            logger.warning("cache unavailable; counting free places in the database", exc_info=True)
            cached = seconds = None
        if cached is not None and cached[0] == performance_ids:
            return cached[1]
    counts = (
        InventoryItem.objects.filter(performance__in=performance_ids)
        .values("performance_id", "price_grade_id")
        .annotate(free=Count("id", filter=free_condition(now)))
    )
    free: dict[int, dict[int, int]] = defaultdict(dict)
    for row in counts:
        free[row["performance_id"]][row["price_grade_id"]] = row["free"]
    free = dict(free)
    if seconds:
        try:
            cache.set(key, (performance_ids, free), seconds)
        except Exception:
            logger.warning("cache unavailable; free places not cached", exc_info=True)
    return free


@dataclass
class SeatMapPlace:
    item_id: int
    seat_id: int | None
    section_id: int
    grade_id: int
    label: str
    x: int
    y: int
    is_accessible: bool
    is_free: bool


@dataclass
class SeatMap:
    layout: SeatLayout
    grades: list[PriceGrade]
    sections: list[Section]
    seats: list[SeatMapPlace]
    standing_free: dict[int, int]
    free_by_grade: dict[int, int]


def seat_map(*, performance: Performance, own_reservation_id: int | None = None, fresh: bool = False) -> SeatMap:
    """Everything the seat map draws: the hall's places (kept for a minute, see
    _places) and which of them are free right now (read on every view).

    Places held by `own_reservation_id` (the customer changing seats) count as free:
    they are theirs to keep or swap. `fresh` reads the places too (the staff's view,
    right after editing seats).
    """
    grades = list(performance.event.grades.all())
    sections = list(Section.objects.filter(layout_id=performance.layout_id).order_by("position", "id"))
    taken = set(
        hold_sql.taken_ids(
            performance_id=performance.pk, now=timezone.now(), keeping=own_reservation_id, seats_only=False
        )
    )
    seats: list[SeatMapPlace] = []
    standing_free: dict[int, int] = defaultdict(int)
    free_by_grade: dict[int, int] = defaultdict(int)
    for item_id, seat_id, section_id, grade_id, label, x, y, accessible in _places(performance, fresh=fresh):
        is_free = item_id not in taken
        if is_free:
            free_by_grade[grade_id] += 1
        if seat_id is None:
            standing_free[section_id] += is_free
            continue
        seats.append(SeatMapPlace(item_id, seat_id, section_id, grade_id, label, x, y, accessible, is_free))
    return SeatMap(
        layout=performance.layout,
        grades=grades,
        sections=sections,
        seats=seats,
        standing_free=dict(standing_free),
        free_by_grade=dict(free_by_grade),
    )


# A few dozen performances' places per process (a 2,400-place hall is ~0.5 MB), each
# for TICKETING_SEAT_MAP_PLACES_SECONDS as set when it was stored. Not Django's local
# memory cache: that pickles on every read, a few milliseconds for a large hall.
_PLACES = _KeptPerProcess(maxsize=32, seconds=lambda: settings.TICKETING_SEAT_MAP_PLACES_SECONDS)


def _places(performance: Performance, *, fresh: bool = False) -> list[tuple]:
    """(item id, seat id, section id, grade id, label, x, y, accessible) of every place
    of the performance, in id order.

    Reading and converting these rows was half the cost of a seat map view (~14 ms for
    2,400 places, docs/benchmarks.md), and on an on-sale day every customer draws the
    map, some several times. They change only when staff edit the hall's seats or
    re-grade places, so each process keeps them for
    TICKETING_SEAT_MAP_PLACES_SECONDS; whether a place is free is never kept. The key
    has the performance's creation time, so a recreated database (tests, a restored
    backup) never meets another performance's places under a reused id.
    """
    seconds = settings.TICKETING_SEAT_MAP_PLACES_SECONDS
    key = (connection.settings_dict["NAME"], performance.pk, performance.created_at)
    if seconds and not fresh:
        return _PLACES.get_or_make(key, lambda: _read_places(performance))
    places = _read_places(performance)
    if seconds:
        _PLACES.put(key, places)  # a fresh read serves the next views too
    return places


def _read_places(performance: Performance) -> list[tuple]:
    rows = InventoryItem.objects.filter(performance=performance).values_list(
        "id", "seat_id", "section_id", "price_grade_id", "seat__label", "seat__x", "seat__y", "seat__is_accessible"
    )
    # Sorted here, not by the database: "ORDER BY id" tempts MariaDB into walking the
    # primary key of every performance's inventory instead of this one's index range
    # (measured: 28,000 rows read for a 2,400-place hall once 22 performances existed).
    return sorted(rows)


# Colours for a layout preview, before any event has priced the grade codes.
PREVIEW_PALETTE = ["#7b2ff7", "#e8453c", "#2f80ed", "#27ae60", "#f2994a", "#9b51e0", "#00a3a3", "#b8860b"]


def _preview_map(*, layout: SeatLayout, sections: list[Section], seats: list[tuple]) -> SeatMap:
    """A map with one colour per grade code and every place free.

    `seats` holds (section_id, grade_code, label, x, y, is_accessible) tuples.
    """
    codes = sorted({seat[1] for seat in seats} | {s.grade_code for s in sections if s.is_standing})
    grades = [
        PriceGrade(id=-(index + 1), code=code, price=None, colour=PREVIEW_PALETTE[index % len(PREVIEW_PALETTE)])
        for index, code in enumerate(codes)
    ]
    grade_ids = {grade.code: grade.id for grade in grades}
    places = [
        SeatMapPlace(0, None, section_id, grade_ids[code], label, x, y, accessible, True)
        for section_id, code, label, x, y, accessible in seats
    ]
    return SeatMap(
        layout=layout,
        grades=grades,
        sections=sections,
        seats=places,
        standing_free={s.id: s.capacity for s in sections if s.is_standing},
        free_by_grade={},
    )


def layout_preview(*, layout: SeatLayout) -> SeatMap:
    """The saved layout drawn as a customer would see it."""
    seats = list(
        Seat.objects.filter(layout=layout)
        .order_by("id")
        .values_list("section_id", "grade_code", "label", "x", "y", "is_accessible")
    )
    return _preview_map(layout=layout, sections=list(layout.sections.order_by("position", "id")), seats=seats)


def layout_plan_preview(*, layout: SeatLayout, plan: LayoutPlan) -> SeatMap:
    """An unsaved builder plan drawn with the same renderer, before staff commit to it."""
    draft = SeatLayout(
        id=layout.id,
        venue_id=layout.venue_id,
        name=layout.name,
        width=plan.width,
        height=plan.height,
        stage_label=plan.stage_label,
    )
    sections, seats = [], []
    for index, planned in enumerate(plan.sections):
        section = Section(
            id=-(index + 1),
            floor=planned.floor,
            name=planned.name,
            kind=planned.kind,
            grade_code=planned.grade_code,
            capacity=planned.capacity,
            x=planned.x,
            y=planned.y,
            width=planned.width,
            height=planned.height,
        )
        sections.append(section)
        seats.extend(
            (section.id, seat.grade_code, seat.label, seat.x, seat.y, seat.is_accessible) for seat in planned.seats
        )
    return _preview_map(layout=draft, sections=sections, seats=seats)


@dataclass
class StaffPlaceState:
    state: str  # free, held, sold or blocked (expired holds count as free)
    holder: str  # "booking code · customer email" for held and sold places


@dataclass
class StandingZoneCounts:
    zone: Section
    free: int
    held: int
    sold: int
    blocked: int


def staff_standing_zones(*, performance: Performance) -> list[StandingZoneCounts]:
    """Each standing zone of the performance with its places by state (expired holds
    count as free), for staff to block or put back a number of them."""
    now = timezone.now()
    zones = list(
        Section.objects.filter(layout=performance.layout_id, kind=Section.Kind.STANDING).order_by("position", "id")
    )
    counts = {
        row["section"]: row
        for row in InventoryItem.objects.filter(performance=performance, section__in=zones, seat__isnull=True)
        .values("section")
        .annotate(
            free=Count("pk", filter=free_condition(now)),
            held=Count("pk", filter=held_condition(now)),
            sold=Count("pk", filter=Q(status=InventoryItem.Status.SOLD)),
            blocked=Count("pk", filter=Q(status=InventoryItem.Status.BLOCKED)),
        )
    }
    empty = {"free": 0, "held": 0, "sold": 0, "blocked": 0}
    return [StandingZoneCounts(zone, **{key: counts.get(zone.pk, empty)[key] for key in empty}) for zone in zones]


def staff_place_states(*, performance: Performance) -> dict[int, StaffPlaceState]:
    """Who holds what, per inventory row: the staff seat view, in one query."""
    now = timezone.now()
    states = {}
    for pk, status, held_until, code, email in InventoryItem.objects.filter(performance=performance).values_list(
        "pk", "status", "held_until", "reservation__code", "reservation__user__email"
    ):
        if (status == InventoryItem.Status.HELD and held_until <= now) or status == InventoryItem.Status.AVAILABLE:
            status = "free"
        holder = f"{code} · {email}" if code and status in ("held", "sold") else ""
        states[pk] = StaffPlaceState(status, holder)
    return states
