from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

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
    seat_map = selectors.seat_map(performance=performance)
    legend = [(grade, seat_map.free_by_grade.get(grade.id, 0)) for grade in seat_map.grades]
    return render(
        request,
        "events/performance_detail.html",
        {
            "event": performance.event,
            "performance": performance,
            "state": performance.sales_state(),
            "seat_map_svg": render_seat_map(seat_map),
            "legend": legend,
            "standing": [(s, seat_map.standing_free.get(s.id, 0)) for s in seat_map.sections if s.is_standing],
        },
    )
