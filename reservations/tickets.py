"""E-tickets: a QR code per ticket of a confirmed booking, carrying a signed ticket id.

The signature (Django's signing, keyed by SECRET_KEY) lets the door trust a code
without trusting whoever printed it; the booking number alone would be guessable from
a screenshot of someone else's confirmation. One code per ticket lets companions walk
in apart, each with their own, and the door admits each ticket once
(reservations.checkin).
"""

import segno
from django.core import signing
from django.utils.safestring import SafeString, mark_safe

from .models import ReservationLine

SALT = "ticketing.e-ticket"


def ticket_token(line: ReservationLine, code: str) -> str:
    """The signed "booking number-ticket id" a ticket's QR code carries."""
    return signing.Signer(salt=SALT).sign(f"{code}-{line.pk}")


def ticket_from_token(token: str) -> tuple[str, int]:
    """The booking number and ticket id in a scanned token, or BadSignature."""
    value = signing.Signer(salt=SALT).unsign(token.strip())
    code, _sep, line_id = value.rpartition("-")
    if not code or not line_id.isdigit():
        raise signing.BadSignature("not a ticket")
    return code, int(line_id)


def ticket_qr_svg(line: ReservationLine, code: str) -> SafeString:
    # segno writes the SVG itself from a fixed alphabet token; nothing user-typed is in it.
    svg = segno.make(ticket_token(line, code), error="m").svg_inline(scale=4, dark="#111827")
    return mark_safe(svg)
