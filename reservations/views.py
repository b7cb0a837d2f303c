from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, prefetch_related_objects
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.phone import phone_display
from events.models import Discount, Section
from events.selectors import published_performance
from events.views import render_performance_page

# Views sit above both apps: checkout hands over to payments here.
from payments.forms import PayForm
from payments.models import Payment
from payments.refund_policy import Policy, cancellation_deadline, refund_quote
from payments.services import hold_release, policy_for_event, refund_preview
from ticketing.formatting import krw

from . import services, waiting_room
from .forms import BestAvailableForm, DiscountForm, HoldForm, asks_for_places
from .models import Reservation
from .selectors import (
    for_booking_rows,
    is_replaced_by_seat_change,
    own_reservation,
    replaced_by_seat_change,
    taken_place_ids,
    upcoming_bookings,
)
from .tickets import ticket_qr_svg


@require_POST
def hold(request, slug, pk):
    # Only the event is needed to hold; a page drawn again loads the rest.
    performance = published_performance(slug=slug, pk=pk)
    if performance is None:
        raise Http404
    if not request.user.is_authenticated:
        # Back to the seat map after signing in: this POST cannot be replayed as a GET.
        return redirect_to_login(performance.get_absolute_url())
    # The map's script asks for JSON: a seat just taken then costs a few bytes, not a
    # redrawn 2,000-seat page; without JavaScript the whole page comes back instead.
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    if not waiting_room.may_enter(performance=performance, user=request.user, cookies=request.COOKIES):
        # Not their turn yet (a form from before the rush, or a script skipping the line).
        queue = reverse("events:waiting_room", kwargs={"slug": slug, "pk": pk})
        if wants_json:
            return JsonResponse({"error": _("Please wait for your turn."), "redirect": queue}, status=403)
        return redirect(queue)
    hold_form = best_form = zones = None
    selected: frozenset[int] = frozenset()
    change = None
    if request.POST.get("mode") == "best":
        form = best_form = BestAvailableForm(request.POST, performance=performance)
    else:
        # Nearly every on-sale request picks seats only: the standing zones are looked
        # up when places in one are asked for (or the page is drawn again below).
        zones = _standing_zones(performance) if _asks_for_standing(request.POST) else None
        form = hold_form = HoldForm(request.POST, performance=performance, standing_zones=zones or ())
    status = 400
    error = _("Please correct the errors below.")
    if form.is_valid():
        try:
            if best_form:
                reservation = services.reservation_hold_best_available(
                    user=request.user,
                    performance=performance,
                    grade=form.cleaned_data["grade"],
                    quantity=form.cleaned_data["quantity"],
                    request_token=form.cleaned_data["token"],
                )
            else:
                if form.cleaned_data["change"]:
                    change = Reservation.objects.filter(code=form.cleaned_data["change"], user=request.user).first()
                    if change is None:
                        raise services.ReservationError(_("That booking cannot be changed here."))
                    if change.payments.filter(status=Payment.Status.AWAITING_DEPOSIT).exists():
                        # Its seats would go while the account stays open for a deposit.
                        raise services.ReservationError(
                            _("A virtual account is waiting for this booking's deposit. Cancel the booking first.")
                        )
                reservation = services.reservation_hold(
                    user=request.user,
                    performance=performance,
                    selection=form.selection(),
                    request_token=form.cleaned_data["token"],
                    replace=change,
                )
        except services.SeatsTaken as exc:
            status, error = 409, exc.message
            if wants_json:
                # The seats tried and lost, and everything else gone since the map was drawn.
                keep = change.pk if change is not None and _live_hold(change) else None
                unavailable = taken_place_ids(performance_id=performance.pk, keep_reservation_id=keep)
                return JsonResponse(
                    {"error": error, "taken": sorted(exc.item_ids), "unavailable": unavailable}, status=409
                )
            # Keep the rest of the customer's choice ticked on the redrawn map.
            selected = frozenset(form.cleaned_data.get("items", ())) - set(exc.item_ids)
        except services.ReservationError as exc:
            # Standing places just taken are a conflict, like a seat; the page drawn again
            # shows what is left.
            status, error = (409 if isinstance(exc, services.ZoneShort) else 400), exc.message
            selected = frozenset(form.cleaned_data.get("items", ()))
        else:
            if wants_json:
                return JsonResponse({"redirect": reservation.get_absolute_url()})
            return redirect("reservations:detail", code=reservation.code)
    if wants_json:
        messages_ = [error] if form.is_valid() else [e for errors in form.errors.values() for e in errors]
        return JsonResponse({"error": " ".join(messages_)}, status=status)
    if change is not None and not _live_hold(change):
        change = None
    if hold_form is not None and hold_form.errors and zones is None:
        # Shown again with its errors, so it needs every zone's field after all.
        hold_form = HoldForm(request.POST, performance=performance, standing_zones=_standing_zones(performance))
        hold_form.is_valid()
    # Forms with field errors are shown again with them; otherwise the page gets fresh
    # forms (a new token) with the rest of the customer's choice still ticked.
    return render_performance_page(
        request,
        performance,
        change=change,
        hold_form=hold_form if hold_form is not None and hold_form.errors else None,
        best_form=best_form if best_form is not None and best_form.errors else None,
        error=error,
        selected=selected,
        status=status,
    )


def _live_hold(reservation: Reservation) -> bool:
    return reservation.status == Reservation.Status.HELD and not reservation.is_expired()


def _standing_zones(performance) -> list:
    zones = Section.objects.filter(layout_id=performance.layout_id, kind=Section.Kind.STANDING)
    return list(zones.order_by("position", "id"))


def _asks_for_standing(data) -> bool:
    """Whether a quantity other than none was posted for any standing zone."""
    return any(key.startswith("standing-") and asks_for_places(value) for key, value in data.items())


@login_required
@require_safe
@never_cache  # a hold's countdown and pay button: Back must not show a copy of a booking let go
def detail(request, code):
    """The checkout page while held (countdown, price breakdown), the booking after."""
    return render_checkout(request, own_reservation(user=request.user, code=code))


def render_checkout(
    request,
    reservation: Reservation,
    *,
    discount_form: DiscountForm | None = None,
    discount_error: str = "",
    pay_form: PayForm | None = None,
    http_status: int = 200,
):
    """The booking page; with a form that was sent back with errors (ticket types, or
    the pay form from payments.views) shown as sent."""
    prefetch_related_objects([reservation], "lines")  # read here and by the refund preview
    lines = list(reservation.lines.all())
    breakdown: dict[tuple, dict] = {}
    for line in lines:
        row = breakdown.setdefault(
            (line.grade_code, line.discount_name, line.price),
            {"name": line.grade_name, "discount": line.discount_name, "price": line.price, "count": 0},
        )
        row["count"] += 1
    for row in breakdown.values():
        row["subtotal"] = row["price"] * row["count"]
    now = timezone.now()
    status = reservation.effective_status(now)
    payments = list(reservation.payments.order_by("-created_at"))
    awaiting = next((p for p in payments if p.status == Payment.Status.AWAITING_DEPOSIT), None)
    live = status in Reservation.LIVE_HOLD_STATUSES
    # A live hold counts down to its end, unless a virtual account waits for its deposit:
    # then the account is shown, with its deadline (an account left open on a booking
    # let go or paid another way is being withdrawn, and is not shown).
    can_pay = counting_down = live and awaiting is None
    replaced = status == Reservation.Status.RELEASED and is_replaced_by_seat_change(reservation)
    policy = policy_for_event(reservation.performance.event) if can_pay else None  # shown before paying
    if discount_form is None and can_pay and status == Reservation.Status.HELD:
        # Ticket types are chosen before paying, as on Korean sites' "가격/할인 선택".
        discount_form = _discount_form(reservation, lines)
    refund = refund_preview(reservation=reservation, now=now) if status == "confirmed" else None
    frozen = next((Policy.from_dict(p.refund_policy) for p in payments if p.status == Payment.Status.PAID), None)
    deadline_policy = policy or frozen
    return render(
        request,
        "reservations/detail.html",
        {
            "reservation": reservation,
            "payments": [p for p in payments if p.concerns_customer],
            "awaiting_deposit": awaiting if live else None,
            "can_pay": can_pay,
            "counting_down": counting_down,
            "pay_form": pay_form or PayForm(initial=PayForm.initial_for(reservation, request.user)),
            "policy": policy,
            "refund": refund,
            "cancel_deadline": cancellation_deadline(deadline_policy, reservation.performance.starts_at)
            if deadline_policy
            else None,
            # Paying now and cancelling straight after: what the customer agrees to by paying.
            "quote_today": refund_quote(
                policy=policy,
                ticket_prices=[line.price for line in lines],
                booking_fee=reservation.fee_amount,
                booked_at=now,
                starts_at=reservation.performance.starts_at,
                now=now,
            )
            if policy
            else None,
            # A virtual account is refunded to an account the customer names.
            "paid_by_vbank": any(
                p.status == Payment.Status.PAID and p.method == Payment.Method.VBANK for p in payments
            ),
            "refund_needs_account": any(p.needs_refund and p.method == Payment.Method.VBANK for p in payments),
            # One code per ticket: companions can each show their own at the door.
            "tickets": [(line, ticket_qr_svg(line, reservation.code)) for line in lines]
            if status == "confirmed"
            else [],
            "performance": reservation.performance,
            "event": reservation.performance.event,
            "lines": lines,
            "breakdown": list(breakdown.values()),
            "status": status,
            "replaced": replaced,
            "seconds_left": reservation.seconds_left(now),
            "fee_per_ticket": reservation.fee_per_ticket(len(lines)),
            "booker_phone": phone_display(reservation.booker_phone),
            # Only a paid booking can have had tickets cancelled out of it.
            "cancelled_tickets": list(reservation.cancelled_tickets.all())
            if status in ("confirmed", "cancelled")
            else [],
            "discount_form": discount_form,
            "discount_error": discount_error,
            "discounts_offered": discount_form.offered if discount_form else [],
            # Who may use each discount is checked at the door: said on the booking.
            "discount_conditions": _discount_conditions(lines) if status == "confirmed" else [],
        },
        status=http_status,
    )


def _discount_form(reservation: Reservation, lines, data=None) -> DiscountForm | None:
    """The ticket types form, if any ticket of the hold may be sold at a discount."""
    options = services.discount_options(reservation=reservation, lines=lines)
    if data is None and not any(options.values()):
        return None
    return DiscountForm(data, lines=lines, options=options)


def _discount_conditions(lines) -> list:
    ids = {line.discount_id for line in lines if line.discount_id}
    return list(Discount.objects.filter(pk__in=ids).exclude(conditions=""))


@login_required
@require_http_methods(["GET", "POST"])
def discounts(request, code):
    """The checkout's ticket types: each ticket at its full price or a discount."""
    reservation = own_reservation(user=request.user, code=code)
    if request.method == "GET":  # the address kept by a language switch or history: the booking is where to choose
        return redirect(reservation.get_absolute_url())
    lines = list(reservation.lines.all())
    form = _discount_form(reservation, lines, request.POST)
    if form.is_valid():
        try:
            chosen = services.reservation_choose_discounts(reservation=reservation, choices=form.choices())
        except services.ReservationError as exc:
            # Shown beside the ticket types as they still are, not as refused.
            return render_checkout(request, reservation, discount_error=exc.message, http_status=400)
        total = krw(chosen.total_amount)
        messages.success(request, _("Ticket types saved. The total to pay is now %(total)s.") % {"total": total})
        return redirect("reservations:detail", code=reservation.code)
    # A choice the form does not offer (a tampered form, a discount withdrawn since).
    return render_checkout(request, reservation, discount_form=form, http_status=400)


@login_required
@require_POST
def release(request, code):
    reservation = own_reservation(user=request.user, code=code)
    performance = reservation.performance
    try:
        # A virtual account still waiting for this hold's deposit is withdrawn with it,
        # so that no money is sent for seats that are no longer the customer's.
        hold_release(reservation=reservation, actor=request.user, reason=gettext_noop("released by customer"))
    except services.ReservationError as exc:
        messages.info(request, exc.message)
    else:
        messages.success(request, _("Your seats have been released."))
    return redirect(performance.get_absolute_url())


@login_required
@require_safe
def booking_list(request):
    """Upcoming bookings and live holds in full, by date; everything else (past shows,
    expired, released and cancelled bookings) a page at a time, latest show first."""
    now = timezone.now()
    current = list(upcoming_bookings(user=request.user, now=now))
    others = (
        Reservation.objects.filter(user=request.user)
        .exclude(pk__in=[r.pk for r in current])
        # The new hold is the booking, the old one is not listed; unless money moved for it
        # (a payment from another tab landing after the change, refunded since).
        .exclude(
            Q(replaced_by_seat_change())
            & ~Q(Exists(Payment.objects.filter(reservation=OuterRef("pk"), paid_at__isnull=False)))
        )
        .select_related("performance__event__venue")
        .prefetch_related("lines")
        .order_by("-performance__starts_at", "-created_at")
    )
    past = Paginator(others, 20).get_page(request.GET.get("page"))
    # A hold counts down only among upcoming bookings (a show that has started is past).
    has_held = for_booking_rows(current, now)
    for_booking_rows(past, now)
    return render(request, "reservations/list.html", {"current": current, "past": past, "has_held": has_held})
