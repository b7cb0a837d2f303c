"""Random sequences of holds, releases, expiries, confirmations and cancellations,
with the engine's invariants checked after every step (hypothesis stateful testing)."""

import contextlib
import datetime as dt
import uuid

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from events.tests.factories import EventFactory, LayoutFactory, PerformanceFactory, UserFactory
from reservations.models import InventoryItem, Reservation
from reservations.services import (
    ReservationError,
    Selection,
    holds_expire,
    reservation_cancel,
    reservation_confirm,
    reservation_hold,
    reservation_release,
)

SPEC = """
section "A" x=0 y=0
rows A-B seats 1-4 grade=R
standing "P" x=0 y=-120 w=200 h=80 capacity=3 grade=ST
"""


class BookingMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        layout = LayoutFactory(spec=SPEC)
        event = EventFactory(venue=layout.venue, grades=[("R", 50000), ("ST", 30000)])
        event.ticket_limit = 3
        event.save(update_fields=["ticket_limit"])
        self.performance = PerformanceFactory(event=event, layout=layout)
        self.users = [UserFactory() for _ in range(3)]
        self.seats = list(
            InventoryItem.objects.filter(performance=self.performance, seat__isnull=False).values_list("pk", flat=True)
        )
        self.zone = layout.sections.get(kind="standing")
        self.clock = timezone.now()

    def reservations(self, *statuses):
        return list(Reservation.objects.filter(performance=self.performance, status__in=statuses).order_by("pk"))

    @rule(
        user=st.integers(0, 2),
        seats=st.lists(st.integers(0, 7), max_size=3, unique=True),
        standing=st.integers(0, 2),
    )
    def hold(self, user, seats, standing):
        selection = Selection(
            item_ids=tuple(self.seats[i] for i in seats), standing=((self.zone.pk, standing),) if standing else ()
        )
        # Refusals are fine; the invariants say whether the state stayed sound.
        with contextlib.suppress(ReservationError):
            reservation_hold(
                user=self.users[user],
                performance=self.performance,
                selection=selection,
                request_token=uuid.uuid4().hex,
                now=self.clock,
            )

    @precondition(lambda self: self.reservations("held"))
    @rule(data=st.data())
    def release(self, data):
        reservation = data.draw(st.sampled_from(self.reservations("held")))
        with contextlib.suppress(ReservationError):
            reservation_release(reservation=reservation, actor=reservation.user, now=self.clock)

    @rule(minutes=st.integers(0, 12), sweep=st.booleans())
    def time_passes(self, minutes, sweep):
        self.clock += dt.timedelta(minutes=minutes)
        if sweep:
            holds_expire(now=self.clock)

    @precondition(lambda self: self.reservations("held", "pending_payment", "expired"))
    @rule(data=st.data())
    def confirm(self, data):
        # Expired (swept or not): a payment made in time whose news came late.
        reservation = data.draw(st.sampled_from(self.reservations("held", "pending_payment", "expired")))
        # A late payment whose seats were taken is refused (payments refunds it).
        with contextlib.suppress(ReservationError):
            reservation_confirm(reservation=reservation, now=self.clock)

    @precondition(lambda self: self.reservations("confirmed"))
    @rule(data=st.data())
    def cancel(self, data):
        reservation = data.draw(st.sampled_from(self.reservations("confirmed")))
        reservation_cancel(reservation=reservation, actor=reservation.user, now=self.clock)

    def live(self, reservation) -> bool:
        if reservation.status == "confirmed":
            return True
        return reservation.status in ("held", "pending_payment") and reservation.expires_at > self.clock

    @invariant()
    def no_place_belongs_to_two_live_reservations(self):
        owners: dict[int, int] = {}
        for reservation in Reservation.objects.filter(performance=self.performance).prefetch_related("lines"):
            if not self.live(reservation):
                continue
            for line in reservation.lines.all():
                assert line.item_id not in owners, f"item {line.item_id} in {owners[line.item_id]} and {reservation.pk}"
                owners[line.item_id] = reservation.pk
        for item in InventoryItem.objects.filter(pk__in=owners):
            # Each live reservation still really has its places.
            assert item.reservation_id == owners[item.pk]
            assert item.status in ("held", "sold")

    @invariant()
    def inventory_agrees_with_reservations(self):
        for item in InventoryItem.objects.filter(performance=self.performance).select_related("reservation"):
            if item.status == "sold":
                assert item.reservation.status == "confirmed"
            elif item.status == "held" and item.held_until > self.clock:
                assert item.reservation.status in ("held", "pending_payment")
                assert item.reservation.lines.filter(item=item).exists()
            elif item.status == "available":
                assert item.reservation_id is None

    @invariant()
    def nobody_passes_the_limit(self):
        for user in self.users:
            taken = sum(
                r.lines.count()
                for r in Reservation.objects.filter(performance=self.performance, user=user)
                if self.live(r)
            )
            assert taken <= 3

    @invariant()
    def amounts_add_up(self):
        for reservation in Reservation.objects.filter(performance=self.performance).prefetch_related("lines"):
            lines = list(reservation.lines.all())
            assert reservation.ticket_amount == sum(line.price for line in lines)
            assert reservation.total_amount == reservation.ticket_amount + 2000 * len(lines)


@pytest.mark.django_db
def test_random_booking_sequences_keep_the_invariants(settings_for_hypothesis):
    run_state_machine_as_test(BookingMachine, settings=settings_for_hypothesis)


@pytest.fixture
def settings_for_hypothesis():
    return settings(
        max_examples=25,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
