"""The waiting room (대기열) in front of a performance's seat map while it is on sale.

Staff give a performance a rate (customers let in per minute). From the moment sales
open, every visitor of the seat map draws a number, in order of arrival, and number n
is let in at `sales open + (n - 1) / rate`; a visitor arriving after their slot goes
straight in. A rush is thereby spread out at the rate the site sustains (see
docs/benchmarks.md, "Flash sale"), first come, first served, and nobody can jump the
line by reloading: the number is kept in their session.

The numbers come from one atomic counter in the cache (Redis INCR in production), so
this needs no table and no scheduler: each page works out its own answer from the
number and the clock. If the cache cannot be reached the waiting room lets everyone in:
the holds themselves stay correct without it, it only keeps the site fast.
"""

import datetime as dt
import logging
import math
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from events.models import Performance

logger = logging.getLogger(__name__)

SESSION_KEY = "waiting_room"


@dataclass(frozen=True)
class Ticket:
    number: int
    admit_at: dt.datetime

    def admitted(self, now: dt.datetime) -> bool:
        return now >= self.admit_at

    def ahead(self, performance: Performance, now: dt.datetime) -> int:
        """How many people will be let in before this ticket, from now."""
        if self.admitted(now):
            return 0
        return math.ceil((self.admit_at - now).total_seconds() / _interval(performance))


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


def waiting_room_ticket(*, performance: Performance, session) -> Ticket | None:
    """The visitor's ticket for this sale of the performance, if they drew one."""
    held = session.get(SESSION_KEY, {}).get(str(performance.pk))
    if not held or held[0] != _sale_key(performance):
        return None
    return Ticket(number=held[1], admit_at=dt.datetime.fromisoformat(held[2]))


def waiting_room_enter(*, performance: Performance, session, now: dt.datetime | None = None) -> Ticket:
    """The visitor's ticket, drawing the next number if they have none yet.

    When the cache cannot be reached the ticket is number 0, let in at once (see the
    module's docstring)."""
    now = now or timezone.now()
    ticket = waiting_room_ticket(performance=performance, session=session)
    if ticket is not None:
        return ticket
    key = _counter_key(performance)
    try:
        # The line lives until well after sales close; add() makes the counter once.
        cache.add(key, 0, timeout=int((performance.sales_close_at - now).total_seconds()) + 86400)
        number = cache.incr(key)
    except Exception:
        # Number 0: let in without a place in line.
        logger.warning("waiting room unavailable for performance %s; visitor let in", performance.pk, exc_info=True)
        ticket = Ticket(number=0, admit_at=now)
    else:
        slot = performance.sales_open_at + dt.timedelta(seconds=(number - 1) * _interval(performance))
        ticket = Ticket(number=number, admit_at=max(slot, now))
    tickets = session.get(SESSION_KEY, {})
    tickets[str(performance.pk)] = [_sale_key(performance), ticket.number, ticket.admit_at.isoformat()]
    session[SESSION_KEY] = tickets
    return ticket


def may_enter(*, performance: Performance, user, session, now: dt.datetime | None = None) -> bool:
    """Whether this visitor may see the seat map and hold seats now.

    Without a ticket they may not while the waiting room is active (they are sent to
    draw one); staff always may, to look after the sale."""
    now = now or timezone.now()
    if not is_active(performance, now) or user.is_staff:
        return True
    ticket = waiting_room_ticket(performance=performance, session=session)
    return ticket is not None and ticket.admitted(now)
