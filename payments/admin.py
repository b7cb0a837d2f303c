import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from reservations import services as reservation_services
from reservations.models import Reservation
from ticketing.admin_helpers import ReadOnlyTabularInline, ServiceWrittenAdmin
from ticketing.formatting import krw

from . import services
from .forms import StaffRefundForm
from .models import Payment, PaymentEvent, RefundPolicy


class PaymentEventInline(ReadOnlyTabularInline):
    """The append-only log of everything that happened to the payment."""

    model = PaymentEvent
    fields = ["at", "kind", "message", "imp_uid", "data"]


@admin.register(Payment)
class PaymentAdmin(ServiceWrittenAdmin):
    list_display = [
        "merchant_uid",
        "reservation",
        "customer",
        "method",
        "status_shown",
        "amount_krw",
        "refunded_krw",
        "needs_refund",
        "created_at",
    ]
    list_filter = ["status", "method", "needs_refund", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["merchant_uid", "imp_uid", "reservation__code", "reservation__user__email"]
    list_select_related = ["reservation__user"]
    readonly_fields = [
        "merchant_uid",
        "imp_uid",
        "reservation",
        "amount",
        "currency",
        "method",
        "status_shown",
        "refunded_amount",
        "needs_refund",
        "failure_reason",
        "vbank_name",
        "vbank_num",
        "vbank_holder",
        "vbank_due",
        "refund_policy",
        "gateway_payload",
        "created_at",
        "paid_at",
        "refund_link",
    ]
    inlines = [PaymentEventInline]
    actions = ["sync_with_gateway"]

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_shown(self, obj):
        # A virtual account withdrawn before any deposit was cancelled, not refunded.
        return obj.get_customer_status_display()

    @admin.display(description=gettext_lazy("customer"), ordering="reservation__user__email")
    def customer(self, obj):
        return obj.reservation.user.email

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_krw(self, obj):
        return krw(obj.amount)

    @admin.display(description=gettext_lazy("refunded"), ordering="refunded_amount")
    def refunded_krw(self, obj):
        return krw(obj.refunded_amount)

    @admin.display(description=gettext_lazy("refund"))
    def refund_link(self, obj):
        if obj.status != Payment.Status.PAID:
            return "-"
        return format_html(
            '<a class="button" href="{}">{}</a>', reverse("admin:payments_payment_refund", args=[obj.pk]), _("Refund…")
        )

    @admin.action(description=gettext_lazy("Check with I'mport now"))
    def sync_with_gateway(self, request, queryset):
        done = 0
        for payment in queryset.exclude(imp_uid=None):
            try:
                services.payment_sync(imp_uid=payment.imp_uid, source="staff")
                done += 1
            except Exception as exc:  # shown to staff, never a 500
                self.message_user(request, f"{payment}: {exc}", messages.ERROR)
        self.message_user(request, _("Checked %(count)d payments with I'mport.") % {"count": done})

    def get_urls(self):
        return [
            path("<int:pk>/refund/", self.admin_site.admin_view(self.refund_view), name="payments_payment_refund"),
            *super().get_urls(),
        ]

    def refund_view(self, request, pk):
        """Staff refund, full or partial, with a reason; optionally cancel the booking."""
        payment = get_object_or_404(Payment.objects.select_related("reservation__user"), pk=pk)
        if not self.has_change_permission(request, payment):
            raise PermissionDenied
        form = StaffRefundForm(
            request.POST or None,
            payment=payment,
            # Whether to cancel is asked, never assumed: a goodwill refund keeps the booking, and
            # refunding all of a booking still to come without cancelling it is refused.
            initial={"amount": payment.refundable_amount, "token": uuid.uuid4().hex},
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.payment_refund_by_staff(
                    payment=payment,
                    amount=data["amount"],
                    reason=data["reason"],
                    actor=request.user,
                    cancel_booking=data["cancel_booking"],
                    refund_holder=data.get("refund_holder", ""),
                    refund_bank=data.get("refund_bank", ""),
                    refund_account=data.get("refund_account", ""),
                    token=data["token"],
                )
            except services.RefundAlreadyAsked as exc:
                self.message_user(request, exc.message, messages.WARNING)
                return redirect("admin:payments_payment_change", payment.pk)
            except (services.PaymentError, reservation_services.ReservationError) as exc:
                form.add_error(None, exc.message)
                # Sending the form again is a new attempt (this one may have reached I'mport).
                form.data = form.data.copy()
                form.data["token"] = uuid.uuid4().hex
            else:
                self.message_user(
                    request, _("Refunded %(amount)s.") % {"amount": krw(data["amount"])}, messages.SUCCESS
                )
                return redirect("admin:payments_payment_change", payment.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": payment,
            "title": _("Refund %(payment)s") % {"payment": payment},
            "form": form,
            "refundable": payment.refundable_amount,
            # What the customer would get by cancelling, for staff to measure a refund against.
            "policy_quote": services.refund_preview(reservation=payment.reservation)
            if payment.reservation.status == Reservation.Status.CONFIRMED and payment.refundable_amount
            else None,
        }
        return TemplateResponse(request, "admin/payments/payment/refund.html", context)


@admin.register(RefundPolicy)
class RefundPolicyAdmin(admin.ModelAdmin):
    list_display = ["event", "free_days_after_booking", "flat_fee_per_ticket", "cutoff_hour_day_before"]
    autocomplete_fields = ["event"]
    search_fields = ["event__title"]
