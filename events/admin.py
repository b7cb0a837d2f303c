import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Count, Min, OuterRef, Q, Subquery, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext, pgettext_lazy

from payments.services import hold_release, performance_cancel, performance_cancel_preview
from reservations.forms import IdListField, parse_id
from reservations.models import InventoryItem, Reservation, free_condition, held_condition
from reservations.services import (
    ReservationError,
    inventory_block,
    inventory_block_standing,
    inventory_create,
    inventory_unblock,
    inventory_unblock_standing,
    missing_grade_codes,
)
from ticketing.formatting import krw

from . import services
from .layout_builder import LayoutSpecError, parse_layout_spec
from .models import Discount, Event, Performance, PriceGrade, Seat, SeatLayout, Section, Venue
from .seatmap import render_seat_map
from .selectors import layout_plan_preview, layout_preview, seat_map, staff_place_states, staff_standing_zones


class SeatLayoutInline(admin.TabularInline):
    model = SeatLayout
    fields = ["name", "stage_label"]
    extra = 0
    show_change_link = True


@admin.register(Venue)
class VenueAdmin(admin.ModelAdmin):
    list_display = ["name", "address", "layout_count"]
    search_fields = ["name", "address"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [SeatLayoutInline]
    # A map link typed without a scheme is an https link (Django 6's default too).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_layouts=Count("layouts"))

    @admin.display(description=gettext_lazy("halls"), ordering="_layouts")
    def layout_count(self, obj):
        return obj._layouts


class SectionInline(admin.TabularInline):
    """Editable until a performance sells the layout; then read-only, as the builder is:
    each performance's inventory was built from these sections (a standing zone's places
    are rows of it), so a new capacity here would change the drawing and not the sale."""

    model = Section
    fields = ["floor", "name", "kind", "grade_code", "capacity", "x", "y", "width", "height", "position"]
    extra = 0

    def _in_use(self, obj) -> bool:
        return obj is not None and obj.pk is not None and obj.is_in_use()

    def has_add_permission(self, request, obj=None):
        return not self._in_use(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not self._in_use(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._in_use(obj) and super().has_delete_permission(request, obj)


class LayoutBuilderForm(forms.Form):
    spec = forms.CharField(
        label=gettext_lazy("Layout description"),
        max_length=100_000,  # a 2,000-seat hall takes a few hundred characters
        widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "style": "font-family: monospace", "spellcheck": "false"}),
    )

    def clean_spec(self):
        spec = self.cleaned_data["spec"]
        try:
            self.plan = parse_layout_spec(spec)
        except LayoutSpecError as exc:
            raise ValidationError(exc.errors) from exc
        return spec


@admin.register(SeatLayout)
class SeatLayoutAdmin(admin.ModelAdmin):
    list_display = ["__str__", "venue", "seat_count", "standing_capacity", "builder_link", "preview_link"]
    list_filter = ["venue"]
    search_fields = ["name", "venue__name"]
    list_select_related = ["venue"]
    readonly_fields = ["width", "height", "builder_link", "preview_link"]
    fields = ["venue", "name", "stage_label", "width", "height", "builder_link", "preview_link"]
    inlines = [SectionInline]

    def get_queryset(self, request):
        # Subqueries, not joins: counting seats and summing sections over one join
        # would multiply each by the other.
        seats = Seat.objects.filter(layout=OuterRef("pk")).values("layout").annotate(n=Count("id")).values("n")
        standing = (
            Section.objects.filter(layout=OuterRef("pk"), kind=Section.Kind.STANDING)
            .values("layout")
            .annotate(n=Sum("capacity"))
            .values("n")
        )
        return super().get_queryset(request).annotate(_seats=Subquery(seats), _standing=Subquery(standing))

    @admin.display(description=gettext_lazy("seats"), ordering="_seats")
    def seat_count(self, obj):
        return obj._seats or 0

    @admin.display(description=gettext_lazy("standing places"), ordering="_standing")
    def standing_capacity(self, obj):
        return obj._standing or 0

    @admin.display(description=gettext_lazy("builder"))
    def builder_link(self, obj):
        if not obj.pk:
            return _("Save the layout first.")
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:events_seatlayout_build", args=[obj.pk]), _("Generate seats")
        )

    @admin.display(description=gettext_lazy("preview"))
    def preview_link(self, obj):
        if not obj.pk:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:events_seatlayout_preview", args=[obj.pk]), _("Preview")
        )

    def get_urls(self):
        return [
            path("<int:pk>/build/", self.admin_site.admin_view(self.build_view), name="events_seatlayout_build"),
            path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view), name="events_seatlayout_preview"),
            *super().get_urls(),
        ]

    def build_view(self, request, pk):
        """Preview a description, then generate the layout's seats from it."""
        layout = get_object_or_404(SeatLayout.objects.select_related("venue"), pk=pk)
        if not self.has_change_permission(request, layout):
            raise PermissionDenied
        preview_svg = None
        plan = None
        form = LayoutBuilderForm(request.POST or None, initial={"spec": layout.spec})
        if request.method == "POST" and form.is_valid():
            plan = form.plan
            if "generate" in request.POST:
                try:
                    services.seat_layout_generate(layout=layout, spec=form.cleaned_data["spec"])
                except ValidationError as exc:
                    form.add_error(None, exc)
                else:
                    self.message_user(
                        request,
                        _("Generated %(seats)d seats and %(standing)d standing places.")
                        % {"seats": plan.seat_count, "standing": plan.standing_capacity},
                        messages.SUCCESS,
                    )
                    return redirect("admin:events_seatlayout_preview", pk=layout.pk)
            else:
                preview_svg = render_seat_map(layout_plan_preview(layout=layout, plan=plan))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": layout,
            "title": _("Layout builder: %(layout)s") % {"layout": layout},
            "form": form,
            "plan": plan,
            "preview_svg": preview_svg,
            "in_use": layout.is_in_use(),
        }
        return TemplateResponse(request, "admin/events/seatlayout/build.html", context)

    def preview_view(self, request, pk):
        layout = get_object_or_404(SeatLayout.objects.select_related("venue"), pk=pk)
        if not self.has_view_permission(request, layout):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": layout,
            "title": _("Preview: %(layout)s") % {"layout": layout},
            "preview_svg": render_seat_map(layout_preview(layout=layout)),
            "seat_count": layout.seats.count(),
        }
        return TemplateResponse(request, "admin/events/seatlayout/preview.html", context)


@admin.register(Seat)
class SeatAdmin(admin.ModelAdmin):
    list_display = ["label", "layout", "section", "row", "number", "grade_code", "is_accessible"]
    list_filter = ["layout__venue", "grade_code", "is_accessible"]
    search_fields = ["label"]
    list_select_related = ["layout__venue", "section"]
    list_per_page = 100
    autocomplete_fields = ["layout"]
    raw_id_fields = ["section"]


class PriceGradeInline(admin.TabularInline):
    model = PriceGrade
    fields = ["code", "name", "price", "colour", "position"]
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)

        class GradeForm(formset.form):
            def hand_clean_DELETE(self):
                # Django would list every place the grade prices (thousands of seats);
                # a count says the same.
                if self.cleaned_data.get("DELETE") and self.instance.pk:
                    places = InventoryItem.objects.filter(price_grade=self.instance).count()
                    if places:
                        raise ValidationError(
                            ngettext(
                                "%(grade)s prices %(count)d place of this event's performances, so it cannot be "
                                "deleted; change its name or price instead.",
                                "%(grade)s prices %(count)d places of this event's performances, so it cannot be "
                                "deleted; change its name or price instead.",
                                places,
                            )
                            % {"grade": self.instance, "count": places}
                        )
                super().hand_clean_DELETE()

        class GradeFormSet(formset):
            def clean(self):
                super().clean()
                # The database refuses "R" beside "r" (grade_unique_code_any_case); the
                # inline's own uniqueness check compares exact codes only.
                seen = {}
                for form in self.forms:
                    code = form.cleaned_data.get("code") if hasattr(form, "cleaned_data") else None
                    if not code or form.cleaned_data.get("DELETE"):
                        continue
                    if code.lower() in seen and seen[code.lower()] != code:
                        form.add_error(
                            "code",
                            _("%(code)s and %(other)s are one grade: use one spelling.")
                            % {"code": code, "other": seen[code.lower()]},
                        )
                    seen.setdefault(code.lower(), code)

        GradeFormSet.form = GradeForm
        return GradeFormSet


class DiscountInline(admin.TabularInline):
    """The event's discounts (권종), which customers choose per ticket at checkout.
    Lines already sold keep the discount's name and price they were sold at."""

    model = Discount
    fields = ["name", "percent_off", "amount_off", "grades", "per_booking", "conditions", "is_active", "position"]
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        grades = PriceGrade.objects.filter(event=obj) if obj is not None else PriceGrade.objects.none()

        class DiscountForm(formset.form):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.fields["grades"].queryset = grades  # this event's, not every event's

            def clean(self):
                cleaned = super().clean()
                amount = cleaned.get("amount_off")
                chosen = cleaned.get("grades")
                prices = [grade.price for grade in (chosen if chosen else grades)]
                if amount and prices and Discount(amount_off=amount).price_for(min(prices)) == 0:
                    # Such a ticket would be free, and a free ticket is not a checkout choice.
                    self.add_error(
                        "amount_off",
                        _("The amount off must be less than the cheapest grade it applies to (%(price)s).")
                        % {"price": krw(min(prices))},
                    )
                return cleaned

        formset.form = DiscountForm
        return formset


class PerformanceInline(admin.TabularInline):
    """Performances listed on the event; they are created on their own page, which
    also builds their inventory."""

    model = Performance
    fields = ["starts_at", "layout", "sales_open_at", "sales_close_at", "status"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ["starts_at"]


class EventAdminForm(forms.ModelForm):
    class Meta:
        model = Event
        fields = ["venue"]  # the admin adds the fieldsets' fields

    def clean_venue(self):
        venue = self.cleaned_data["venue"]
        if self.instance.pk and venue != self.instance.venue and self.instance.performances.exists():
            # Each performance is drawn on a hall of the old venue, with its inventory built from it.
            raise ValidationError(
                _(
                    "This event has performances in the halls of %(venue)s, so its venue cannot change. "
                    "Create the event again at the new venue instead."
                )
                % {"venue": self.instance.venue}
            )
        return venue


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    form = EventAdminForm
    list_display = ["title", "category", "venue", "status", "performance_count", "first_date"]
    list_filter = ["status", "category", "venue"]
    search_fields = ["title", "slug", "venue__name"]
    prepopulated_fields = {"slug": ["title"]}
    list_select_related = ["venue"]
    inlines = [PriceGradeInline, DiscountInline, PerformanceInline]
    fieldsets = [
        (None, {"fields": ["title", "slug", "category", "venue", "status"]}),
        (gettext_lazy("Information"), {"fields": ["summary", "description", "poster", "age_rating", "running_time"]}),
        (gettext_lazy("Sales rules"), {"fields": ["ticket_limit", "hold_minutes", "booking_fee"]}),
    ]
    actions = ["publish", "unpublish"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_performances=Count("performances"), _first=Min("performances__starts_at"))
        )

    @admin.display(description=gettext_lazy("performances"), ordering="_performances")
    def performance_count(self, obj):
        return obj._performances

    @admin.display(description=gettext_lazy("first performance"), ordering="_first")
    def first_date(self, obj):
        return obj._first

    @admin.action(description=gettext_lazy("Publish selected events"))
    def publish(self, request, queryset):
        count = queryset.update(status=Event.Status.PUBLISHED)
        self.message_user(request, ngettext("%d event published.", "%d events published.", count) % count)

    @admin.action(description=gettext_lazy("Unpublish selected events (back to draft)"))
    def unpublish(self, request, queryset):
        count = queryset.update(status=Event.Status.DRAFT)
        self.message_user(request, ngettext("%d event unpublished.", "%d events unpublished.", count) % count)


class PerformanceAdminForm(forms.ModelForm):
    class Meta:
        model = Performance
        fields = ["event", "layout", "starts_at", "sales_open_at", "sales_close_at", "status", "waiting_room_rate"]

    def clean_status(self):
        status, was = self.cleaned_data["status"], self.instance.status if self.instance.pk else None
        cancelled = Performance.Status.CANCELLED
        if status == cancelled and was != cancelled:
            # Cancelling refunds money: it has its own action, which shows what it will do.
            raise ValidationError(
                _(
                    "To cancel a performance, use “Cancel and refund every booking” on the list of performances: "
                    "it shows what will be released and refunded first."
                )
            )
        if was == cancelled and status != cancelled:
            raise ValidationError(_("A cancelled performance cannot be put back on sale: its bookings are refunded."))
        return status

    def clean(self):
        data = super().clean()
        # Only a new performance builds inventory, so only then must every grade code
        # of its layout have a price; afterwards the inventory carries the grades.
        if not self.instance.pk and data.get("event") and data.get("layout") and not self.errors:
            probe = Performance(event=data["event"], layout=data["layout"])
            missing = missing_grade_codes(performance=probe)
            if missing:
                raise ValidationError(
                    _("The event has no price grade for these grade codes of the layout: %(codes)s. Add them first.")
                    % {"codes": ", ".join(missing)}
                )
            if not data["layout"].seats.exists() and not data["layout"].sections.exists():
                self.add_error("layout", _("This layout has no seats yet. Generate them with the layout builder."))
        return data


class DuplicatePerformanceForm(forms.Form):
    dates = forms.CharField(
        label=gettext_lazy("New dates"),
        widget=forms.Textarea(attrs={"rows": 8, "cols": 40}),
        help_text=gettext_lazy("One per line: 2026-12-24 (same time of day) or 2026-12-24 14:00."),
    )

    def __init__(self, *args, performance, **kwargs):
        super().__init__(*args, **kwargs)
        self.performance = performance

    def clean_dates(self):
        local_start = timezone.localtime(self.performance.starts_at)
        starts, errors = [], []
        for line in self.cleaned_data["dates"].splitlines():
            text = line.strip()
            if not text:
                continue
            try:
                if len(text) <= 10:
                    day = dt.date.fromisoformat(text)
                    naive = dt.datetime.combine(day, local_start.time().replace(second=0, microsecond=0, tzinfo=None))
                else:
                    naive = dt.datetime.strptime(text, "%Y-%m-%d %H:%M")
            except ValueError:
                errors.append(_("“%(text)s” is not a date like 2026-12-24 or 2026-12-24 14:00.") % {"text": text})
                continue
            start = timezone.make_aware(naive)
            if start <= timezone.now():
                errors.append(_("%(text)s is in the past.") % {"text": text})
            elif start in starts or start == self.performance.starts_at:
                errors.append(_("%(text)s is listed twice or is the original date.") % {"text": text})
            else:
                starts.append(start)
        if errors:
            raise ValidationError(errors)
        return starts


# Why places were taken off sale ("house seats", "broken seat", "camera"), kept with
# the record of the change in the performance's history.
BLOCK_REASON_MAX = 200


class StandingBlockForm(forms.Form):
    """Staff block (or unblock) a number of a standing zone's places."""

    zone = forms.CharField()
    quantity = forms.IntegerField(label=pgettext_lazy("standing zone", "places"), min_value=1, max_value=100_000)
    reason = forms.CharField(max_length=BLOCK_REASON_MAX, required=False)

    def clean_zone(self):
        zone = parse_id(self.cleaned_data["zone"])
        if zone is None:
            raise ValidationError(_("That standing zone is not part of this performance."))
        return zone


@admin.register(Performance)
class PerformanceAdmin(admin.ModelAdmin):
    form = PerformanceAdminForm
    list_display = [
        "__str__",
        "status",
        "sales_open_at",
        "sales_close_at",
        "sold",
        "held",
        "free",
        "blocked",
        "seats_link",
    ]
    # Date filters, not date_hierarchy: the hierarchy makes MariaDB convert time zones
    # itself (CONVERT_TZ), which needs its time zone tables loaded; ranges do not.
    list_filter = ["status", "event__category", "event", ("starts_at", admin.DateFieldListFilter)]
    search_fields = ["event__title", "event__venue__name"]
    list_select_related = ["event"]
    autocomplete_fields = ["event"]
    actions = ["open_sales", "close_sales", "duplicate", "cancel_and_refund"]

    def get_queryset(self, request):
        now = timezone.now()
        return (
            super()
            .get_queryset(request)
            .annotate(
                _sold=Count("inventory", filter=Q(inventory__status=InventoryItem.Status.SOLD)),
                _held=Count("inventory", filter=held_condition(now, prefix="inventory__")),
                _free=Count("inventory", filter=free_condition(now, prefix="inventory__")),
                _blocked=Count("inventory", filter=Q(inventory__status=InventoryItem.Status.BLOCKED)),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        # The inventory was built from this layout; moving to another would orphan it.
        return ["layout"] if obj and obj.pk else []

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        event_id = initial.get("event")
        if event_id:
            layout = SeatLayout.objects.filter(venue__events=event_id).first()
            if layout:
                initial.setdefault("layout", layout.pk)
        return initial

    @admin.display(description=gettext_lazy("sold"), ordering="_sold")
    def sold(self, obj):
        return obj._sold

    @admin.display(description=gettext_lazy("held"), ordering="_held")
    def held(self, obj):
        return obj._held

    @admin.display(description=gettext_lazy("free"), ordering="_free")
    def free(self, obj):
        return obj._free

    @admin.display(description=gettext_lazy("blocked"), ordering="_blocked")
    def blocked(self, obj):
        return obj._blocked

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            count = inventory_create(performance=obj)
            self.message_user(request, _("Created %(count)d places for sale.") % {"count": count})

    def get_actions(self, request):
        # One at a time, from a performance's page: the bulk action would record and report
        # as deleted a performance that services.performance_delete refused.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs, request):
        """What deleting would take, said in a box office's terms: the performances and
        their places (which staff cannot delete one by one), or why a performance
        cannot go. Deleting itself is services.performance_delete."""
        objs = list(objs)
        booked = set(Reservation.objects.filter(performance__in=objs).values_list("performance", flat=True).distinct())
        reasons = (
            services.performance_undeletable_reason(performance, has_bookings=performance.pk in booked)
            for performance in objs
        )
        protected = [reason for reason in reasons if reason]
        places = InventoryItem.objects.filter(performance__in=objs).count()
        to_delete = [str(performance) for performance in objs]
        count = {Performance._meta.verbose_name_plural: len(objs), InventoryItem._meta.verbose_name_plural: places}
        return to_delete, count, set(), protected

    def delete_model(self, request, obj):
        services.performance_delete(performance=obj)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:  # on sale, or booked since the confirmation page
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect("admin:events_performance_change", object_id)

    def has_cancel_permission(self, request):
        """Cancelling refunds every booking: it takes the right to refund payments too."""
        return self.has_change_permission(request) and request.user.has_perm("payments.change_payment")

    @admin.action(description=gettext_lazy("Cancel and refund every booking"), permissions=["cancel"])
    def cancel_and_refund(self, request, queryset):
        """Asks first, with what it will do; then cancels each selected performance."""
        performances = list(queryset.select_related("event").order_by("starts_at"))
        if request.POST.get("confirmed") == "yes":
            for performance in performances:
                self._report_cancellation(
                    request, performance, performance_cancel(performance=performance, actor=request.user)
                )
            return None
        # A few queries per performance: staff select one or a handful to cancel.
        rows = [(performance, performance_cancel_preview(performance=performance)) for performance in performances]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Cancel performances"),
            "rows": rows,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/events/performance/cancel.html", context)

    def _report_cancellation(self, request, performance, summary):
        holds = ngettext("%(count)d hold released", "%(count)d holds released", summary.holds_released) % {
            "count": summary.holds_released
        }
        refunds = ngettext(
            "%(count)d booking being refunded", "%(count)d bookings being refunded", summary.refunds_queued
        ) % {"count": summary.refunds_queued}
        self.message_user(
            request,
            _("%(performance)s is cancelled: %(holds)s, %(refunds)s (%(amount)s).")
            % {"performance": performance, "holds": holds, "refunds": refunds, "amount": krw(summary.refund_total)},
        )
        if summary.waiting_for_account:
            self.message_user(
                request,
                ngettext(
                    "%(count)d booking was paid by virtual account: its customer cancels it from the booking page "
                    "for a full refund to the account they name.",
                    "%(count)d bookings were paid by virtual account: their customers cancel them from the booking "
                    "page for a full refund to the account they name.",
                    summary.waiting_for_account,
                )
                % {"count": summary.waiting_for_account},
                messages.WARNING,
            )

    @admin.action(description=gettext_lazy("Open sales for selected performances"))
    def open_sales(self, request, queryset):
        count = services.performances_open_sales(performance_ids=list(queryset.values_list("pk", flat=True)))
        skipped = queryset.count() - count
        self.message_user(
            request, ngettext("%d performance is on sale.", "%d performances are on sale.", count) % count
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%d performance was left alone: it is cancelled, sold out, started, or its sales window "
                    "has closed (change “sales close at” first).",
                    "%d performances were left alone: they are cancelled, sold out, started, or their sales "
                    "window has closed (change “sales close at” first).",
                    skipped,
                )
                % skipped,
                messages.WARNING,
            )

    @admin.action(description=gettext_lazy("Close sales for selected performances"))
    def close_sales(self, request, queryset):
        count = services.performances_close_sales(performance_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("%d performance closed.", "%d performances closed.", count) % count)

    @admin.action(description=gettext_lazy("Duplicate on other dates"))
    def duplicate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one performance to duplicate."), messages.ERROR)
            return None
        return redirect("admin:events_performance_duplicate", pk=queryset.get().pk)

    @admin.display(description=gettext_lazy("seats"))
    def seats_link(self, obj):
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("admin:events_performance_seats", args=[obj.pk]),
            _("Seat view"),
            reverse("admin:reservations_checkin_scan", args=[obj.pk]),
            _("Entrance"),
        )

    def get_urls(self):
        return [
            path("<int:pk>/seats/", self.admin_site.admin_view(self.seats_view), name="events_performance_seats"),
            path(
                "<int:pk>/duplicate/",
                self.admin_site.admin_view(self.duplicate_view),
                name="events_performance_duplicate",
            ),
            *super().get_urls(),
        ]

    def seats_view(self, request, pk):
        """Who holds what, seat by seat; block or unblock places (house seats, broken seats)."""
        performance = get_object_or_404(Performance.objects.select_related("event", "layout__venue"), pk=pk)
        if not self.has_view_permission(request, performance):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request, performance):
                raise PermissionDenied
            try:
                # As many as Django lets a form send (DATA_UPLOAD_MAX_NUMBER_FIELDS).
                limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS or 50_000
                ids = IdListField(required=False, max_count=limit).clean(request.POST.getlist("items"))
            except ValidationError as exc:
                self.message_user(request, exc.messages[0], messages.ERROR)
                return redirect("admin:events_performance_seats", pk=performance.pk)
            reason = request.POST.get("reason", "").strip()[:BLOCK_REASON_MAX]  # the seat form's
            if "release" in request.POST:
                self._release_hold(request, performance, request.POST["release"])
            elif "block_standing" in request.POST or "unblock_standing" in request.POST:
                self._block_standing(request, performance)
            elif not ids:
                self.message_user(request, _("Choose seats on the map first."), messages.WARNING)
            elif "block" in request.POST:
                changed = inventory_block(performance=performance, item_ids=ids)
                done = ngettext(
                    "Blocked %(count)d of %(asked)d place.", "Blocked %(count)d of %(asked)d places.", len(ids)
                ) % {"count": len(changed), "asked": len(ids)}
                self._record_blocking(request, performance, done, changed, reason=reason)
                self._report_skipped(request, performance, ids, changed)
            elif "unblock" in request.POST:
                changed = inventory_unblock(performance=performance, item_ids=ids)
                count = len(changed)
                done = ngettext("Put %(count)d place back on sale.", "Put %(count)d places back on sale.", count)
                done %= {"count": count}
                self._record_blocking(request, performance, done, changed, reason=reason)
                self._report_skipped(request, performance, ids, changed)
            return redirect("admin:events_performance_seats", pk=performance.pk)
        states = staff_place_states(performance=performance)
        holds = (
            Reservation.objects.filter(performance=performance, status__in=["held", "pending_payment", "confirmed"])
            .select_related("user")
            .prefetch_related("lines")
            .order_by("status", "expires_at")
        )
        counts = dict.fromkeys(("free", "held", "sold", "blocked"), 0)
        for place in states.values():
            counts[place.state] += 1
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": performance,
            "standing_zones": staff_standing_zones(performance=performance),
            "title": _("Seats of %(performance)s") % {"performance": performance},
            "seat_map_svg": render_seat_map(seat_map(performance=performance, fresh=True), staff_states=states),
            "counts": counts,
            "holds": [r for r in holds if not r.is_expired()],
            "can_change": self.has_change_permission(request, performance),
            # Who blocked what and why (and any other change to the performance).
            "history": LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(Performance), object_id=str(performance.pk)
            )
            .select_related("user")
            .order_by("-action_time")[:10],
        }
        return TemplateResponse(request, "admin/events/performance/seats.html", context)

    def _release_hold(self, request, performance, code: str) -> None:
        """A hold let go by staff from the list under the map (a customer on the phone, a stuck hold)."""
        reservation = Reservation.objects.filter(performance=performance, code=code).first()
        if reservation is None:
            self.message_user(request, _("No booking %(code)s for this performance.") % {"code": code}, messages.ERROR)
            return
        try:
            # Through payments: a virtual account waiting for its deposit is withdrawn too.
            hold_release(reservation=reservation, actor=request.user, reason=gettext_noop("released by staff"))
        except ReservationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, _("Released the seats of %(code)s.") % {"code": code})

    def _block_standing(self, request, performance):
        """A number of places of one standing zone off sale, or back on sale."""
        form = StandingBlockForm(request.POST)
        if not form.is_valid():
            for errors in form.errors.values():
                self.message_user(request, " ".join(errors), messages.ERROR)
            return
        zone, quantity = form.cleaned_data["zone"], form.cleaned_data["quantity"]
        try:
            if "block_standing" in request.POST:
                changed = inventory_block_standing(performance=performance, section_id=zone, quantity=quantity)
                message = _("Blocked %(count)d of %(asked)d standing places; held or sold ones were skipped.")
            else:
                changed = inventory_unblock_standing(performance=performance, section_id=zone, quantity=quantity)
                message = ngettext(
                    "Put %(count)d standing place back on sale.",
                    "Put %(count)d standing places back on sale.",
                    len(changed),
                )
        except ReservationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        zone_name = Section.objects.get(pk=zone).display_name
        done = f"{zone_name}: {message % {'count': len(changed), 'asked': quantity}}"
        self._record_blocking(request, performance, done, changed, reason=form.cleaned_data["reason"].strip())

    def _report_skipped(self, request, performance, asked: list[int], changed: list[int]) -> None:
        """Name the seats chosen that were left as they were, and why."""
        skipped = set(asked) - set(changed)
        if not skipped:
            return
        rows = (
            InventoryItem.objects.filter(pk__in=skipped, performance=performance, seat__isnull=False)
            .order_by("seat__y", "seat__x")
            .values_list("status", "seat__label")
        )
        by_state = {"blocked": [], "free": [], "taken": []}
        for status, label in rows:
            state = {InventoryItem.Status.BLOCKED: "blocked", InventoryItem.Status.AVAILABLE: "free"}.get(
                status, "taken"
            )
            by_state[state].append(label)
        notes = {
            "blocked": _("Already blocked: %(seats)s."),
            "free": _("Not blocked, so nothing to put back: %(seats)s."),
            "taken": _("Held or sold, so left alone: %(seats)s."),
        }
        for state, labels in by_state.items():
            if labels:
                shown = ", ".join(labels[:20]) + (f" (+{len(labels) - 20})" if len(labels) > 20 else "")
                self.message_user(request, notes[state] % {"seats": shown}, messages.WARNING)

    def _record_blocking(self, request, performance, done: str, changed: list[int], *, reason: str) -> None:
        """Tell staff what changed and keep it in the performance's history: who, when,
        which seats (those changed, by label) and why."""
        self.message_user(request, done)
        if not changed:
            return  # every place chosen was taken, or none was blocked: nothing changed
        seats = InventoryItem.objects.filter(pk__in=changed, seat__isnull=False).order_by("seat__y", "seat__x")
        labels = list(seats.values_list("seat__label", flat=True)[:50])  # seats only: a zone is named already
        record = done
        if labels:
            more = len(changed) - len(labels)  # past the first 50
            record += " " + _("Seats: %(labels)s.") % {"labels": ", ".join(labels) + (f" (+{more})" if more else "")}
        if reason:
            record += " " + _("Reason: %(reason)s") % {"reason": reason}
        self.log_change(request, performance, record)

    def duplicate_view(self, request, pk):
        performance = get_object_or_404(Performance.objects.select_related("event", "layout"), pk=pk)
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DuplicatePerformanceForm(request.POST or None, performance=performance)
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    created = [
                        services.performance_duplicate(performance=performance, starts_at=start)
                        for start in form.cleaned_data["dates"]
                    ]
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                self.message_user(
                    request,
                    ngettext("Created %d performance.", "Created %d performances.", len(created)) % len(created),
                    messages.SUCCESS,
                )
                # The window moves with the date: one close to now may have closed already.
                now = timezone.now()
                closed = [new for new in created if new.sales_close_at <= now]
                if closed:
                    self.message_user(
                        request,
                        _("Sales are already closed for %(performances)s: set a later “sales close at” on its page.")
                        % {"performances": ", ".join(str(new) for new in closed)},
                        messages.WARNING,
                    )
                return redirect(
                    reverse("admin:events_performance_changelist") + f"?event__id__exact={performance.event_id}"
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": performance,
            "title": _("Duplicate %(performance)s") % {"performance": performance},
            "form": form,
        }
        return render(request, "admin/events/performance/duplicate.html", context)
