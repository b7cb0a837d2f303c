import math
import uuid

from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import ngettext
from django.views.decorators.http import require_safe

from reservations import waiting_room
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
        {"event": event, "performances": selectors.event_performances(event=event), "grades": event.grades.all()},
    )


@require_safe
def performance_detail(request, slug, pk):
    performance = get_object_or_404(
        Performance.objects.select_related("event__venue", "layout").filter(event__in=_visible_events(request)),
        pk=pk,
        event__slug=slug,
    )
    if not waiting_room.may_enter(performance=performance, user=request.user, session=request.session):
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
    ahead and the expected wait. static/js/waiting-room.js asks again every few
    seconds (JSON) and moves on to the seat map when it is their turn; without
    JavaScript the page reloads itself."""
    performance = get_object_or_404(
        Performance.objects.select_related("event").filter(event__in=_visible_events(request)), pk=pk, event__slug=slug
    )
    now = timezone.now()
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    if not waiting_room.is_active(performance, now):
        # No line (any more): straight to the seat map, which says whether it is on sale.
        if wants_json:
            return JsonResponse({"admitted": True, "redirect": performance.get_absolute_url()})
        return redirect(performance.get_absolute_url())
    ticket = waiting_room.waiting_room_enter(performance=performance, session=request.session, now=now)
    ahead = ticket.ahead(performance, now)
    wait_seconds = max(0, math.ceil((ticket.admit_at - now).total_seconds()))
    minutes = max(1, math.ceil(wait_seconds / 60))
    status = {
        "admitted": ticket.admitted(now),
        "number": ticket.number,
        "ahead": ahead,
        "wait_seconds": wait_seconds,
        "ahead_text": ngettext("%(count)s person ahead of you", "%(count)s people ahead of you", ahead)
        % {"count": intcomma(ahead)},
        "wait_text": ngettext("about %(count)d minute", "about %(count)d minutes", minutes) % {"count": minutes},
        "redirect": performance.get_absolute_url(),
    }
    if wants_json:
        return JsonResponse(status)
    if status["admitted"]:
        return redirect(performance.get_absolute_url())
    return render(
        request,
        "events/waiting_room.html",
        {"event": performance.event, "performance": performance, **status},
    )


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
    if change and not selected:
        selected = frozenset(change.items.filter(seat__isnull=False).values_list("pk", flat=True))
    token = uuid.uuid4().hex  # a fresh token per render: resubmitting this form holds once
    hold_form = hold_form or HoldForm(
        performance=performance,
        standing_zones=standing,
        initial={"token": token, "change": change.code if change else ""},
    )
    seated_grade_ids = {seat.grade_id for seat in seat_map.seats}
    best_form = best_form or BestAvailableForm(
        performance=performance, grade_ids=seated_grade_ids, initial={"token": token}
    )
    grades = {grade.code: {"name": grade.display_name, "price": grade.price} for grade in seat_map.grades}
    return render(
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
        },
        status=status,
    )
