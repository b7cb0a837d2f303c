"""E-tickets: a QR code per confirmed booking, carrying a signed booking number.

The signature (Django's signing, keyed by SECRET_KEY) lets the door check a code
offline-first without trusting whoever printed it; the booking number alone would
be guessable from a screenshot of someone else's confirmation.
"""

import segno
from django.core import signing
from django.utils.safestring import SafeString, mark_safe

from .models import Reservation

SALT = "ticketing.e-ticket"


def ticket_token(reservation: Reservation) -> str:
    return signing.Signer(salt=SALT).sign(reservation.code)


def ticket_code_from_token(token: str) -> str:
    """The booking number in a scanned token, or BadSignature."""
    return signing.Signer(salt=SALT).unsign(token)


def ticket_qr_svg(reservation: Reservation) -> SafeString:
    # segno writes the SVG itself from a fixed alphabet token; nothing user-typed is in it.
    svg = segno.make(ticket_token(reservation), error="m").svg_inline(scale=5, dark="#111827")
    return mark_safe(svg)
