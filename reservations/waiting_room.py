"""The waiting room (대기열) in front of a performance's seat map while it is on sale.

Staff give a performance a rate (customers let in per minute). From the moment sales
open, every visitor of the seat map draws a number, in order of arrival, and number n
is let in at `sales open + 1 s + (n - 1) / rate`; a visitor arriving after their slot
goes straight in. A rush is thereby spread out at the rate the site sustains (see
docs/benchmarks.md, "Flash sale"), first come, first served, and nobody can jump the
line: customers take a number signed in (as on Korean ticketing sites), one per
customer and sale (a second browser or a lost cookie gets the same number back), and the
number is kept in a signed cookie naming the customer, so it cannot be changed or lent.

Taking a number must be cheap, since a whole rush asks at the same moment: an atomic
counter in the cache (Redis INCR in production) and a signed cookie, no table, no
session write and no scheduler; each page works out its own answer from the number and
the clock. The cache must be shared by every process (REDIS_URL): a per-process cache
would keep one line per process. If the cache cannot be reached the waiting room lets
everyone in for a minute at a time: the holds themselves stay correct without it, it
only keeps the site fast.
"""

import datetime as dt
import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from events.models import Performance

logger = logging.getLogger(__name__)

COOKIE_SALT = "reservations.waiting_room"

# Nobody is let in during the first second of a sale: that second belongs to the rush
# taking its numbers (a couple of milliseconds each, but all at once), and the first
# seat maps would otherwise queue behind them (docs/benchmarks.md, "Waiting room").
OPENING = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class Ticket:
    number: int
    admit_at: dt.datetime

    def admitted(self, now: dt.datetime) -> bool:
        return now >= self.admit_at

    def ahead(self, performance: Performance, now: dt.datetime) -> int:
        """How many people with a smaller number are still waiting."""
        if self.admitted(now):
            return 0
        since_first = (now - performance.sales_open_at - OPENING).total_seconds()
        let_in = 0 if since_first < 0 else math.floor(since_first / _interval(performance)) + 1
        return max(0, self.number - 1 - let_in)


def _interval(performance: Performance) -> float:
    return 60 / performance.waiting_room_rate


def _sale_key(performance: Performance) -> str:
    # A sale rescheduled to another opening time starts a new line. The creation time
    # keeps a recreated database (tests, a restored backup) from meeting an old line
    # under a reused id.
    created = int(performance.created_at.timestamp() * 1_000_000)
    return f"{performance.pk}:{created}:{int(performance.sales_open_at.timestamp())}"


def _counter_key(performance: Performance) -> str:
    # The database's name keeps two test databases (or sites) sharing one Redis apart.
    return f"waiting-room:{connection.settings_dict['NAME']}:{_sale_key(performance)}"


def is_active(performance: Performance, now: dt.datetime | None = None) -> bool:
    """Whether visitors of this performance's seat map wait their turn right now."""
    now = now or timezone.now()
    return bool(performance.waiting_room_rate) and performance.sales_state(now) == "on_sale"


def _cookie_name(performance: Performance) -> str:
    return f"line-{performance.pk}"


def waiting_room_ticket(*, performance: Performance, user, cookies) -> Ticket | None:
    """The customer's ticket for this sale of the performance, if they took one in this
    browser: a signed cookie naming them, which they can keep or lose but not change
    or lend."""
    raw = cookies.get(_cookie_name(performance))
    if not raw:
        return None
    try:
        sale, user_id, number, admit_at = signing.loads(raw, salt=COOKIE_SALT)
        admit_at = dt.datetime.fromtimestamp(admit_at, tz=dt.UTC)
    except (signing.BadSignature, ValueError, TypeError, OverflowError):
        return None
    if sale != _sale_key(performance) or user_id != user.pk:
        return None
    return Ticket(number=number, admit_at=admit_at)


def waiting_room_draw(*, performance: Performance, user, now: dt.datetime | None = None) -> Ticket:
    """The customer's number in line (the same one if they took one before), and when
    it is let in.

    When the cache cannot be reached the ticket is number 0, let in at once (see the
    module's docstring)."""
    now = now or timezone.now()
    counter = _counter_key(performance)
    mine = f"{counter}:customer:{user.pk}"
    lifetime = int((performance.sales_close_at - now).total_seconds()) + 86400
    try:
        number = cache.get(mine)
        if number is None:
            try:
                number = cache.incr(counter)
            except ValueError:  # the first of this sale: make the counter, once
                cache.add(counter, 0, timeout=lifetime)
                number = cache.incr(counter)
            if not cache.add(mine, number, timeout=lifetime):
                # The same customer in two tabs at once: the first number stands (the
                # other is a gap in the line, let in to nobody).
                number = cache.get(mine, number)
    except Exception:
        logger.warning("waiting room unavailable for performance %s; visitor let in", performance.pk, exc_info=True)
        return Ticket(number=0, admit_at=now)
    slot = performance.sales_open_at + OPENING + dt.timedelta(seconds=(number - 1) * _interval(performance))
    return Ticket(number=number, admit_at=max(slot, now))


def waiting_room_cookie(*, performance: Performance, user, ticket: Ticket, now: dt.datetime | None = None) -> dict:
    """Keyword arguments for HttpResponse.set_cookie that give the customer their ticket."""
    now = now or timezone.now()
    value = signing.dumps(
        [_sale_key(performance), user.pk, ticket.number, ticket.admit_at.timestamp()], salt=COOKIE_SALT
    )
    # A pass given while the line could not be kept lasts a minute, not the whole sale.
    lasts = 60 if ticket.number == 0 else int((performance.sales_close_at - now).total_seconds())
    return {
        "key": _cookie_name(performance),
        "value": value,
        "max_age": max(60, lasts),
        "httponly": True,
        "samesite": "Lax",
        "secure": settings.SESSION_COOKIE_SECURE,
    }


def may_enter(*, performance: Performance, user, cookies, now: dt.datetime | None = None) -> bool:
    """Whether this visitor may see the seat map and hold seats now.

    Without a ticket they may not while the waiting room is active (they are sent to
    take one, signing in first); staff always may, to look after the sale."""
    now = now or timezone.now()
    if not is_active(performance, now) or user.is_staff:
        return True
    ticket = waiting_room_ticket(performance=performance, user=user, cookies=cookies)
    return ticket is not None and ticket.admitted(now)
