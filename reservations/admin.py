import datetime as dt

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext

from accounts.phone import phone_display, phone_normalize
from events.models import Performance
from payments.services import PaymentError, booking_cancel_refunded, hold_release
from ticketing.admin_helpers import ReadOnlyTabularInline, ServiceWrittenAdmin
from ticketing.formatting import krw

from . import services
from .checkin import admission_counts, ticket_admit
from .forms import parse_id
from .models import CancelledTicket, InventoryItem, Reservation, ReservationLine, ReservationTransition


class ReservationLineInline(ReadOnlyTabularInline):
    model = ReservationLine
    fields = ["label", "grade_name", "discount_name", "full_price", "paid", "admitted_at"]

    @admin.display(description=gettext_lazy("full price (KRW)"))
    def full_price(self, obj):
        return krw(obj.list_price)

    @admin.display(description=gettext_lazy("price (KRW)"))
    def paid(self, obj):
        return krw(obj.price)


class CancelledTicketInline(ReadOnlyTabularInline):
    """Tickets cancelled out of the booking (부분 취소); the refund is on its payment."""

    model = CancelledTicket
    fields = ["label", "grade_name", "discount_name", "paid", "cancelled_at", "actor"]

    @admin.display(description=gettext_lazy("price (KRW)"))
    def paid(self, obj):
        return krw(obj.price)


class ReservationTransitionInline(ReadOnlyTabularInline):
    """The state history: append-only, so read-only here; states and the engine's
    reasons in the reader's language."""

    model = ReservationTransition
    fields = ["at", "from_state", "to_state", "actor", "why"]

    @admin.display(description=gettext_lazy("from"))
    def from_state(self, obj):
        return obj.from_status_label()

    @admin.display(description=gettext_lazy("to"))
    def to_state(self, obj):
        return obj.to_status_label()

    @admin.display(description=gettext_lazy("reason"))
    def why(self, obj):
        return obj.reason_label()


class PerformanceFilter(admin.SimpleListFilter):
    """One performance of the event chosen in the event filter (a long run has
    hundreds: they are listed once an event is chosen)."""

    title = gettext_lazy("performance")
    parameter_name = "performance"
    event_parameter = "performance__event__id__exact"

    def lookups(self, request, model_admin):
        event_id = request.GET.get(self.event_parameter, "")
        if parse_id(event_id):
            performances = Performance.objects.filter(event_id=event_id)
        elif parse_id(self.value()):  # a chosen performance stays listed, to show what is filtered
            performances = Performance.objects.filter(pk=self.value())
        else:
            return []
        performances = performances.only("starts_at").order_by("starts_at")
        return [(str(p.pk), f"{timezone.localtime(p.starts_at):%Y-%m-%d %H:%M}") for p in performances]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(performance_id=value) if parse_id(value) else queryset.none()


class EffectiveStatusFilter(admin.SimpleListFilter):
    """Status as customers see it: a hold past its expiry is expired already."""

    title = gettext_lazy("status")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return Reservation.Status.choices

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        now = timezone.now()
        live = list(Reservation.LIVE_HOLD_STATUSES)
        if value == Reservation.Status.EXPIRED:
            return queryset.filter(status=value) | queryset.filter(status__in=live, expires_at__lte=now)
        if value in live:
            return queryset.filter(status=value, expires_at__gt=now)
        return queryset.filter(status=value)


@admin.register(Reservation)
class ReservationAdmin(ServiceWrittenAdmin):
    list_display = ["code", "user", "performance", "status_now", "places", "total", "expires_at", "created_at"]
    list_filter = [
        EffectiveStatusFilter,
        "performance__event",
        PerformanceFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    # A customer calling the box office gives their name or number.
    search_fields = ["code", "user__email", "user__name", "booker_name", "booker_phone", "lines__label"]
    list_select_related = ["user", "performance__event"]
    readonly_fields = [
        "code",
        "user",
        "booker_name",
        "booker_phone_shown",
        "performance",
        "status_now",
        "hold_ends",
        "tickets_krw",
        "fee_krw",
        "total",
        "payment_links",
        "created_at",
        "confirmed_at",
        "cancelled_at",
    ]
    inlines = [ReservationLineInline, CancelledTicketInline, ReservationTransitionInline]
    actions = ["release_holds", "cancel_refunded"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_places=Count("lines", distinct=True)).distinct()

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            # Numbers are stored as +8210...; staff type them as 010-1234-5678.
            phone = phone_normalize(search_term)
        except ValidationError:
            phone = ""
        if phone:
            found |= queryset.filter(booker_phone=phone)
        return found, may_have_duplicates

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_now(self, obj):
        return obj.get_effective_status_display()

    @admin.display(description=gettext_lazy("booker's phone"))
    def booker_phone_shown(self, obj):
        return phone_display(obj.booker_phone)

    @admin.display(description=gettext_lazy("places"), ordering="_places")
    def places(self, obj):
        return obj._places

    @admin.display(description=gettext_lazy("total (KRW)"), ordering="total_amount")
    def total(self, obj):
        return krw(obj.total_amount)

    @admin.display(description=gettext_lazy("tickets"))
    def tickets_krw(self, obj):
        return krw(obj.ticket_amount)

    @admin.display(description=gettext_lazy("booking fee"))
    def fee_krw(self, obj):
        return krw(obj.fee_amount)

    @admin.display(description=gettext_lazy("hold ends"))
    def hold_ends(self, obj):
        # Only a hold has an end; on a booking the old deadline would read as a threat.
        if obj.effective_status() not in Reservation.LIVE_HOLD_STATUSES:
            return "-"
        return date_format(timezone.localtime(obj.expires_at), "Y-m-d H:i:s")

    @admin.display(description=gettext_lazy("payments"))
    def payment_links(self, obj):
        """Each payment, to refund or check from its own page."""
        rows = [
            format_html(
                '<a href="{}">{}</a> · {} · {} · {}',
                reverse("admin:payments_payment_change", args=[payment.pk]),
                payment.merchant_uid,
                payment.get_method_display(),
                payment.get_customer_status_display(),
                krw(payment.amount),
            )
            for payment in obj.payments.order_by("created_at")
        ]
        return format_html_join(mark_safe("<br>"), "{}", ((row,) for row in rows)) if rows else "-"

    @admin.action(description=gettext_lazy("Release selected holds"), permissions=["change"])
    def release_holds(self, request, queryset):
        released = 0
        for reservation in queryset.filter(status__in=Reservation.LIVE_HOLD_STATUSES):
            try:
                # Through payments: a virtual account waiting for its deposit is withdrawn too.
                hold_release(reservation=reservation, actor=request.user, reason=gettext_noop("released by staff"))
                released += 1
            except services.ReservationError:
                pass  # expired meanwhile: the service recorded it as expired
        skipped = queryset.count() - released
        self.message_user(request, ngettext("Released %d hold.", "Released %d holds.", released) % released)
        if skipped:
            self.message_user(
                request,
                _("%(count)d were not live holds (confirmed, expired or already released) and were left alone.")
                % {"count": skipped},
                messages.WARNING,
            )

    @admin.action(description=gettext_lazy("Cancel selected bookings already refunded in full"), permissions=["change"])
    def cancel_refunded(self, request, queryset):
        cancelled, refused = 0, []
        for reservation in queryset.filter(status=Reservation.Status.CONFIRMED):
            try:
                booking_cancel_refunded(reservation=reservation, actor=request.user)
                cancelled += 1
            except PaymentError as exc:
                refused.append(exc.message)
        self.message_user(request, ngettext("Cancelled %d booking.", "Cancelled %d bookings.", cancelled) % cancelled)
        for message in refused:
            self.message_user(request, message, messages.WARNING)
        others = queryset.exclude(status=Reservation.Status.CONFIRMED).count()
        if others:
            self.message_user(
                request,
                _("%(count)d were not confirmed bookings and were left alone.") % {"count": others},
                messages.WARNING,
            )

    # --- Entrance (입장 확인) -------------------------------------------------

    def get_urls(self):
        return [
            path("checkin/", self.admin_site.admin_view(self.checkin_list_view), name="reservations_checkin"),
            path(
                "checkin/<int:performance_id>/",
                self.admin_site.admin_view(self.checkin_view),
                name="reservations_checkin_scan",
            ),
            *super().get_urls(),
        ]

    @staticmethod
    def _may_check_in(request) -> None:
        if not request.user.has_perm("reservations.check_in"):
            raise PermissionDenied

    def checkin_list_view(self, request):
        """Performances whose doors are open about now: where door staff start."""
        self._may_check_in(request)
        now = timezone.now()
        performances = (
            Performance.objects.filter(
                starts_at__gte=now - dt.timedelta(hours=6), starts_at__lte=now + dt.timedelta(hours=18)
            )
            .exclude(status=Performance.Status.CANCELLED)
            .select_related("event", "layout__venue")
            .order_by("starts_at")
        )
        context = {**self.admin_site.each_context(request), "title": _("Entrance"), "performances": performances}
        return TemplateResponse(request, "admin/reservations/checkin_list.html", context)

    def checkin_view(self, request, performance_id):
        """Scan (or type) a ticket's code: admitted once, or why not, in a word and a colour."""
        self._may_check_in(request)
        performance = get_object_or_404(Performance.objects.select_related("event", "layout__venue"), pk=performance_id)
        admission = None
        if request.method == "POST":
            admission = ticket_admit(token=request.POST.get("code", ""), performance=performance, staff=request.user)
        admitted, booked = admission_counts(performance)
        recent = (
            ReservationLine.objects.filter(reservation__performance=performance, admitted_at__isnull=False)
            .select_related("reservation", "admitted_by")
            .order_by("-admitted_at")[:10]
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Entrance: %(performance)s") % {"performance": performance},
            "performance": performance,
            "admission": admission,
            "admitted": admitted,
            "booked": booked,
            "recent": recent,
        }
        return TemplateResponse(request, "admin/reservations/checkin.html", context)


@admin.register(InventoryItem)
class InventoryItemAdmin(admin.ModelAdmin):
    """Read-only look at the raw inventory; changes go through the seat view."""

    list_display = ["__str__", "performance", "price_grade", "status", "held_until", "reservation"]
    list_filter = ["status", "performance__event"]
    search_fields = ["seat__label", "reservation__code"]
    list_select_related = ["performance__event", "seat", "section", "price_grade", "reservation"]
    raw_id_fields = ["performance", "reservation"]
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
