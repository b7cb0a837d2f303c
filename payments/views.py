import json
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.signing import BadSignature, TimestampSigner
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.phone import phone_display
from reservations.forms import parse_id
from reservations.models import Reservation
from reservations.selectors import own_reservation
from reservations.views import render_checkout
from ticketing.celery import send_now
from ticketing.formatting import krw

from . import services, tasks
from .forms import CancelForm, PayForm, RefundAccountForm
from .gateway import GatewayError, PaymentNotFound
from .models import Payment

logger = logging.getLogger(__name__)


def _own_payment(request, merchant_uid) -> Payment:
    """A payment of the signed-in customer's; another customer's order is a 404."""
    return get_object_or_404(
        Payment.objects.select_related("reservation__performance__event"),
        merchant_uid=merchant_uid,
        reservation__user=request.user,
    )


@login_required
@require_http_methods(["GET", "POST"])
def pay(request, code):
    """Start a payment attempt and open I'mport's payment window."""
    reservation = own_reservation(user=request.user, code=code)
    if request.method == "GET":  # the address from history or a copied link: the booking is where to pay from
        return redirect(reservation.get_absolute_url())
    form = PayForm(request.POST)
    if not form.is_valid():
        if reservation.status not in Reservation.LIVE_HOLD_STATUSES or reservation.is_expired():
            # Paid, released or expired in another tab: the booking says which.
            return redirect(reservation.get_absolute_url())
        # The checkout again, with the fields as typed and what is wrong with them.
        return render_checkout(request, reservation, pay_form=form, http_status=400)
    shown = form.cleaned_data["shown_total"]
    if shown is not None and shown != reservation.total_amount:
        messages.error(
            request,
            _(
                "The total of this booking is now %(total)s: its ticket types were changed in another window. "
                "Check it, then pay."
            )
            % {"total": krw(reservation.total_amount)},
        )
        return redirect(reservation.get_absolute_url() + "#pay-title")
    try:
        payment = services.payment_start(
            reservation=reservation,
            method=form.cleaned_data["method"],
            booker_name=form.cleaned_data["booker_name"],
            booker_phone=form.cleaned_data["booker_phone"],
        )
    except services.PaymentError as exc:
        messages.error(request, exc.message)
        return redirect(reservation.get_absolute_url())
    event = reservation.performance.event
    params = {
        "pg": settings.IAMPORT_PG,
        "pay_method": payment.method,
        "merchant_uid": payment.merchant_uid,
        "name": event.title[:40],
        "amount": payment.amount,
        "currency": payment.currency,
        "buyer_email": request.user.email,
        "buyer_name": reservation.booker_name,
        # As Korean PGs expect it ("010-1234-5678"), not the stored E.164.
        "buyer_tel": phone_display(reservation.booker_phone),
        "m_redirect_url": request.build_absolute_uri(reverse("payments:return")),
        "notice_url": settings.SITE_URL + reverse("payments:webhook"),
    }
    if payment.method == Payment.Method.VBANK:
        # The deposit deadline: never after sales close.
        due = min(timezone.now() + timezone.timedelta(days=1), reservation.performance.sales_close_at)
        params["vbank_due"] = timezone.localtime(due).strftime("%Y%m%d%H%M")
    return render(
        request,
        "payments/pay.html",
        {
            "reservation": reservation,
            "payment": payment,
            "params": params,
            "sdk_url": settings.IAMPORT_JS_SDK_URL,
            "merchant_code": settings.IAMPORT_MERCHANT_CODE,
        },
    )


def _body(request) -> dict | None:
    """A JSON or form-encoded body as a dict (I'mport sends either), None if unreadable."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    return request.POST.dict()


def _finish(payment: Payment, imp_uid: str, source: str, error_msg: str = ""):
    """Sync after the browser says it is done; the answer is what I'mport says."""
    reservation = payment.reservation
    if not imp_uid:
        services.payment_window_failed(payment=payment, error_msg=error_msg)
        return False, _("The payment did not go through. You can try again while your seats are held.")
    try:
        result = services.payment_sync(imp_uid=imp_uid, source=source)
    except PaymentNotFound:
        return False, _("We could not find this payment at the payment service.")
    except GatewayError:
        logger.warning("sync after %s for %s deferred: gateway unavailable", source, imp_uid)
        return False, _(
            "We could not reach the payment service to confirm your payment. If you paid, your booking will be "
            "confirmed automatically within a few minutes; you have not been charged twice."
        )
    if result.payment and result.payment.reservation_id != reservation.pk:
        return False, _("This payment belongs to another order.")
    if error_msg and result.payment is not None and result.payment.status == Payment.Status.PREPARED:
        # The window was closed, or the card refused, and I'mport agrees that nothing
        # was paid (a card payment still "ready"): back to the hold, to try again.
        services.payment_window_failed(payment=result.payment, error_msg=error_msg)
        return False, _("The payment did not go through. You can try again while your seats are held.")
    return result.outcome in ("paid", "awaiting_deposit", "unchanged"), result.message


@login_required
@require_POST
def complete(request):
    """The JS SDK's callback posts here (desktop flow)."""
    data = _body(request)
    if data is None:
        return HttpResponseBadRequest("unreadable body")
    payment = _own_payment(request, str(data.get("merchant_uid", ""))[:40])
    ok, message = _finish(
        payment, str(data.get("imp_uid") or "")[:40], "callback", error_msg=str(data.get("error_msg") or "")
    )
    (messages.success if ok else messages.error)(request, message)
    return JsonResponse({"ok": ok, "message": message, "redirect": payment.reservation.get_absolute_url()})


@login_required
@require_GET
def payment_return(request):
    """The mobile flow: I'mport redirects here (m_redirect_url) instead of calling back."""
    payment = _own_payment(request, request.GET.get("merchant_uid", "")[:40])
    ok, message = _finish(
        payment, request.GET.get("imp_uid", "")[:40], "redirect", error_msg=request.GET.get("error_msg", "")
    )
    (messages.success if ok else messages.error)(request, message)
    return redirect(payment.reservation.get_absolute_url())


@csrf_exempt
@require_POST
def webhook(request):
    """I'mport's notification. V1 webhooks are unsigned, so the body is only a hint:
    the sync fetches the payment from I'mport. Answer at once; the work is queued."""
    data = _body(request)
    if data is None:
        return HttpResponseBadRequest("unreadable body")
    imp_uid = str(data.get("imp_uid") or "")[:40]
    if not imp_uid:
        return HttpResponseBadRequest("imp_uid is required")
    services.record_webhook(imp_uid=imp_uid, data=data)
    send_now(tasks.sync_payment, imp_uid)  # broker down: logged, and reconciliation finds it
    return HttpResponse("ok")


@login_required
def cancel(request, code):
    """Cancel a confirmed booking: the exact refund first, then a confirmation."""
    reservation = own_reservation(user=request.user, code=code)
    if reservation.status == Reservation.Status.CANCELLED:  # from an older tab
        messages.info(request, _("This booking is already cancelled."))
        return redirect(reservation.get_absolute_url())
    if reservation.status != Reservation.Status.CONFIRMED:
        messages.error(request, _("Only a confirmed booking can be cancelled."))
        return redirect(reservation.get_absolute_url())
    payment = reservation.payments.filter(status=Payment.Status.PAID).first()
    lines = list(reservation.lines.all())
    # Which tickets to cancel (부분 취소): all of them unless the customer ticks fewer.
    data = request.POST if request.method == "POST" else request.GET
    # "choose" marks the ticket boxes' form, which sends no "tickets" when none is ticked.
    asked = {parse_id(value) for value in data.getlist("tickets")} if "choose" in data or "tickets" in data else None
    on_booking = {line.pk for line in lines}
    if asked is not None and (not asked or not asked <= on_booking):
        messages.error(request, _("Choose at least one ticket of this booking to cancel."))
        return redirect("payments:cancel", code=reservation.code)
    selected = on_booking if asked is None else asked
    some = selected != on_booking
    quote = services.refund_preview(reservation=reservation, line_ids=selected if some else None)
    needs_account = bool(payment and payment.method == Payment.Method.VBANK)
    signer = TimestampSigner(salt="booking-cancel")
    form = CancelForm(
        request.POST or None, needs_account=needs_account, initial={"token": signer.sign(reservation.code)}
    )
    if request.method == "POST" and form.is_valid():
        try:
            signer.unsign(form.cleaned_data["token"], max_age=600)
        except BadSignature:
            form.add_error(None, _("The refund shown has expired. Please review it again."))
        else:
            account = {name: form.cleaned_data[name] for name in ("refund_holder", "refund_bank", "refund_account")}
            try:
                # Every ticket ticked is the whole booking, which booking_cancel_tickets hands on.
                done = services.booking_cancel_tickets(
                    reservation=reservation, line_ids=selected, actor=request.user, **account
                )
            except services.PaymentError as exc:
                form.add_error(None, exc.message)
            else:
                amount = krw(done.total_refund)
                if some:
                    message = ngettext(
                        "%(count)d ticket cancelled: %(amount)s will be refunded. The rest of your booking stands.",
                        "%(count)d tickets cancelled: %(amount)s will be refunded. The rest of your booking stands.",
                        len(selected),
                    ) % {"count": len(selected), "amount": amount}
                else:
                    message = _("Your booking is cancelled. %(amount)s will be refunded.") % {"amount": amount}
                messages.success(request, message)
                return redirect(reservation.get_absolute_url())
    return render(
        request,
        "payments/cancel.html",
        {"reservation": reservation, "quote": quote, "form": form, "lines": lines, "selected": selected, "some": some},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def refund_account(request, code):
    """Name the bank account for a virtual account deposit we owe back."""
    reservation = own_reservation(user=request.user, code=code)
    payment = reservation.payments.filter(needs_refund=True, method=Payment.Method.VBANK).first()
    if payment is None:
        messages.info(request, _("Nothing is owed back on this booking."))
        return redirect(reservation.get_absolute_url())
    form = RefundAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.payment_refund_to_account(payment=payment, **form.cleaned_data)
        except services.PaymentError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Your deposit is being refunded to the account you named."))
            return redirect(reservation.get_absolute_url())
    owed = payment.amount - payment.refunded_amount
    return render(
        request,
        "payments/refund_account.html",
        {"reservation": reservation, "payment": payment, "owed": owed, "form": form},
        status=400 if form.errors else 200,
    )
