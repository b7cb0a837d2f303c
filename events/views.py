import math
import uuid
from collections import Counter

from django.contrib.auth.views import redirect_to_login
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import ngettext
from django.views.decorators.http import require_safe

from payments.services import policy_for_event
from reservations import hold_sql, waiting_room
from reservations.forms import BestAvailableForm, HoldForm
from reservations.models import Reservation

from . import selectors
from .forms import EventSearchForm
from .models import Event, Performance
from .seatmap import render_seat_map

EVENTS_PER_PAGE = 12


def _visible_events(request):
    """Staff may preview draft events; customers see only published ones."""
    if request.user.is_staff:
        return Event.objects.all()
    return Event.objects.filter(status=Event.Status.PUBLISHED)


@require_safe
def home(request):
    return render(
        request,
        "events/home.html",
        {"on_sale": selectors.events_on_sale(), "upcoming": selectors.events_upcoming(), "form": EventSearchForm()},
    )


@require_safe
def event_list(request):
    form = EventSearchForm(request.GET or None)
    filters = {}
    if form.is_valid():
        filters = {k: v for k, v in form.cleaned_data.items() if v}
        filters["query"] = filters.pop("q", "")
    elif form.is_bound:
        # Keep the fields that are valid, so one bad date does not hide every result.
        filters = {k: v for k, v in form.cleaned_data.items() if v and k not in form.errors}
        filters["query"] = filters.pop("q", "")
    page = Paginator(selectors.events_search(**filters), EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "events/event_list.html", {"form": form, "page": page, "query": query.urlencode()})


@require_safe
def event_detail(request, slug):
    event = get_object_or_404(_visible_events(request).select_related("venue"), slug=slug)
    return render(
        request,
        "events/event_detail.html",
        {
            "event": event,
            "performances": selectors.event_performances(event=event),
            "grades": event.grades.all(),
            "discounts": event.discounts.filter(is_active=True).prefetch_related("grades"),
            "policy": policy_for_event(event),
        },
    )


@require_safe
def performance_detail(request, slug, pk):
    performance = get_object_or_404(
        Performance.objects.select_related("event__venue", "layout").filter(event__in=_visible_events(request)),
        pk=pk,
        event__slug=slug,
    )
    if not waiting_room.may_enter(performance=performance, user=request.user, cookies=request.COOKIES):
        return redirect("events:waiting_room", slug=slug, pk=pk)
    change = None
    if request.user.is_authenticated and request.GET.get("change"):
        # Changing seats: the customer's own live hold, else a plain page.
        change = (
            Reservation.objects.filter(
                code=request.GET["change"], user=request.user, performance=performance, status=Reservation.Status.HELD
            )
            .filter(expires_at__gt=timezone.now())
            .first()
        )
    return render_performance_page(request, performance, change=change)


@require_safe
def waiting_room_page(request, slug, pk):
    """The line in front of an on-sale seat map: the visitor's number, how many are
    ahead and the expected wait. The page counts down by itself
    (static/js/waiting-room.js) and moves on to the seat map at the visitor's turn: no
    polling, so a long line costs the server one request per visitor. Without
    JavaScript it reloads itself now and then."""
    # Published events only (a rush is never on a draft), read the cheap way: every
    # visitor of a rush asks for this page once, all at the same moment.
    performance = selectors.published_performance(slug=slug, pk=pk)
    if performance is None:
        raise Http404
    seat_map_url = performance.get_absolute_url()
    now = timezone.now()
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    if not waiting_room.is_active(performance, now):
        # No line (any more): straight to the seat map, which says whether it is on sale.
        if wants_json:
            return JsonResponse({"admitted": True, "redirect": seat_map_url})
        return redirect(seat_map_url)
    if not request.user.is_authenticated:
        # One number per customer: crawlers and scripts without an account take none.
        return redirect_to_login(request.get_full_path())
    user = request.user
    ticket = waiting_room.waiting_room_ticket(performance=performance, user=user, cookies=request.COOKIES)
    drawn = ticket is None
    if drawn:
        ticket = waiting_room.waiting_room_draw(performance=performance, user=user, now=now)
    ahead = ticket.ahead(performance, now)
    # To the millisecond: whole seconds would wake every visitor of one second at once.
    wait_seconds = round(max(0.0, (ticket.admit_at - now).total_seconds()), 3)
    status = {
        "admitted": ticket.admitted(now),
        "number": ticket.number,
        "ahead": ahead,
        "wait_seconds": wait_seconds,
        "redirect": seat_map_url,
    }
    if wants_json:
        response = JsonResponse(status)
    elif status["admitted"]:
        response = redirect(seat_map_url)
    else:
        response = _waiting_room_render(request, performance, status)
    if drawn:
        response.set_cookie(
            **waiting_room.waiting_room_cookie(performance=performance, user=user, ticket=ticket, now=now)
        )
    return response


def _waiting_room_render(request, performance: Performance, status: dict):
    ahead, wait_seconds = status["ahead"], status["wait_seconds"]
    minutes = max(1, math.ceil(wait_seconds / 60))
    return render(
        request,
        "events/waiting_room.html",
        {
            "event": performance.event,
            "performance": performance,
            **status,
            "ahead_text": _ahead_text(ahead) % {"count": intcomma(ahead)},
            "wait_text": _wait_text(minutes) % {"count": minutes},
            # The script rewrites both as the wait runs down; "{count}" is its blank.
            "texts": {
                "ahead_one": _ahead_text(1) % {"count": "{count}"},
                "ahead_other": _ahead_text(2) % {"count": "{count}"},
                "wait_one": _wait_text(1).replace("%(count)d", "{count}"),
                "wait_other": _wait_text(2).replace("%(count)d", "{count}"),
            },
            "interval_seconds": 60 / performance.waiting_room_rate,
        },
    )


def _ahead_text(count: int) -> str:
    return ngettext("%(count)s person ahead of you", "%(count)s people ahead of you", count)


def _wait_text(minutes: int) -> str:
    return ngettext("about %(count)d minute", "about %(count)d minutes", minutes)


def render_performance_page(
    request,
    performance: Performance,
    *,
    change=None,
    hold_form=None,
    best_form=None,
    error: str = "",
    selected: frozenset[int] = frozenset(),
    status: int = 200,
):
    """The seat map page; the hold view re-renders it with the error and a fresh map."""
    seat_map = selectors.seat_map(performance=performance, own_reservation_id=change.pk if change else None)
    state = performance.sales_state()
    can_book = state == "on_sale" and request.user.is_authenticated
    standing = [s for s in seat_map.sections if s.is_standing]
    token = uuid.uuid4().hex  # a fresh token per render: resubmitting this form holds once
    initial = {"token": token, "change": change.code if change else ""}
    if change:
        # Changing starts from what the customer holds: its seats ticked, and its places
        # in each standing zone counted.
        held = list(change.items.values_list("pk", "seat_id", "section_id"))
        if not selected:
            selected = frozenset(pk for pk, seat, _zone in held if seat is not None)
        zones = Counter(zone for _pk, seat, zone in held if seat is None)
        initial.update({f"standing-{zone}": count for zone, count in zones.items()})
    hold_form = hold_form or HoldForm(performance=performance, standing_zones=standing, initial=initial)
    seated_grade_ids = {seat.grade_id for seat in seat_map.seats}
    best_form = best_form or BestAvailableForm(
        performance=performance,
        grades=[grade for grade in seat_map.grades if grade.pk in seated_grade_ids],
        initial={"token": token},
    )
    grades = {grade.code: {"name": grade.display_name, "price": grade.price} for grade in seat_map.grades}
    limit = performance.event.ticket_limit
    owned = 0
    if can_book:
        # Tickets the customer already has here count towards the limit: the page says so
        # before a hold is refused for it (the places being changed are given up, so not counted).
        owned = hold_sql.live_places(
            user_id=request.user.pk,
            performance_id=performance.pk,
            now=timezone.now(),
            excluding=change.pk if change else None,
        )
    remaining = max(limit - owned, 0)
    if can_book:
        best_form.fields["quantity"].widget.attrs["max"] = max(remaining, 1)
    response = render(
        request,
        "events/performance_detail.html",
        {
            "event": performance.event,
            "performance": performance,
            "state": state,
            "can_book": can_book,
            "change": change,
            "error": error,
            "seat_map_svg": render_seat_map(seat_map, selectable=can_book, selected=selected),
            "legend": [(grade, seat_map.free_by_grade.get(grade.id, 0)) for grade in seat_map.grades],
            "standing": [
                (section, seat_map.standing_free.get(section.id, 0), hold_form[f"standing-{section.pk}"])
                for section in standing
            ],
            "hold_form": hold_form,
            "best_form": best_form,
            "has_seats": bool(seat_map.seats),
            "grade_prices": grades,
            "owned": owned,
            "remaining": remaining,
        },
        status=status,
    )
    # Live seats and a one-time form token: Back or a proxy must never show a stored copy.
    add_never_cache_headers(response)
    return response
