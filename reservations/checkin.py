"""Admission at the entrance (입장 확인): each ticket's code is let in once.

The rule is one conditional UPDATE (admitted_at still empty), so two scanners reading
the same screenshot at the same instant admit it once, and the second is told when and
by whom it was. Everything else (whose ticket, for which performance, still valid) is
read before, and only refuses.
"""

import datetime as dt
from dataclasses import dataclass

from django.core.signing import BadSignature
from django.utils import timezone
from django.utils.translation import gettext as _

from events.models import Discount, Performance

from .models import CancelledTicket, Reservation, ReservationLine
from .tickets import ticket_from_token


@dataclass
class Admission:
    admitted: bool
    message: str
    line: ReservationLine | None = None
    reservation: Reservation | None = None
    # What to check before letting a discounted ticket in (만 13~18세, 복지카드...).
    proof: str = ""


def ticket_admit(*, token: str, performance: Performance, staff, now: dt.datetime | None = None) -> Admission:
    """Let the ticket whose code was scanned in, or say why not."""
    now = now or timezone.now()
    try:
        code, line_id = ticket_from_token(token)
    except BadSignature:
        return Admission(False, _("This is not one of our tickets (the code does not check out)."))
    line = ReservationLine.objects.select_related("reservation__performance__event").filter(pk=line_id).first()
    if line is None or line.reservation.code != code:
        if CancelledTicket.objects.filter(reservation__code=code).exists():
            return Admission(False, _("This ticket was cancelled by its customer and refunded."))
        return Admission(False, _("No ticket has this code."))
    reservation = line.reservation
    if reservation.performance_id != performance.pk:
        when = timezone.localtime(reservation.performance.starts_at)
        return Admission(
            False,
            _("This ticket is for %(event)s on %(when)s, not this performance.")
            % {"event": reservation.performance.event.title, "when": f"{when:%Y-%m-%d %H:%M}"},
            line,
            reservation,
        )
    if reservation.status != Reservation.Status.CONFIRMED:
        return Admission(
            False,
            _("This booking is %(status)s: the ticket is not valid.") % {"status": reservation.get_status_display()},
            line,
            reservation,
        )
    if performance.status == Performance.Status.CANCELLED:
        return Admission(False, _("This performance has been cancelled."), line, reservation)
    let_in = ReservationLine.objects.filter(pk=line.pk, admitted_at__isnull=True).update(
        admitted_at=now, admitted_by=staff
    )
    if not let_in:
        line.refresh_from_db(fields=["admitted_at", "admitted_by"])
        when = timezone.localtime(line.admitted_at)
        return Admission(
            False,
            _("Already admitted at %(time)s by %(staff)s: this code has been used.")
            % {"time": f"{when:%H:%M:%S}", "staff": line.admitted_by or _("someone")},
            line,
            reservation,
        )
    line.admitted_at, line.admitted_by = now, staff
    proof = ""
    if line.discount_id:
        conditions = Discount.objects.filter(pk=line.discount_id).values_list("conditions", flat=True).first()
        proof = f"{line.discount_name}: {conditions}" if conditions else line.discount_name
    return Admission(True, _("Admitted: %(place)s.") % {"place": line.label}, line, reservation, proof)


def admission_counts(performance: Performance) -> tuple[int, int]:
    """(tickets admitted, tickets booked) of the performance's confirmed bookings."""
    lines = ReservationLine.objects.filter(
        reservation__performance=performance, reservation__status=Reservation.Status.CONFIRMED
    )
    return lines.filter(admitted_at__isnull=False).count(), lines.count()
