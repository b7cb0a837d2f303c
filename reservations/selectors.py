from django.shortcuts import get_object_or_404
from django.utils import timezone

from .models import InventoryItem, Reservation, free_condition


def own_reservation(*, user, code: str) -> Reservation:
    """The signed-in customer's reservation by booking code; anyone else's is a 404."""
    return get_object_or_404(
        Reservation.objects.select_related("performance__event__venue", "performance__layout"), code=code, user=user
    )


def taken_place_ids(*, performance_id: int, keep_reservation_id: int | None = None, now=None) -> list[int]:
    """Ids of the numbered seats nobody can hold right now: held, sold or blocked.

    What the seat map's script greys out when a hold comes back "just taken", so the
    customer sees every seat gone since the page was drawn, not only the ones they
    tried. The seats of `keep_reservation_id` (the live hold being changed) stay
    selectable.
    """
    now = now or timezone.now()
    taken = InventoryItem.objects.filter(performance_id=performance_id, seat__isnull=False).exclude(
        free_condition(now, keeping=keep_reservation_id)
    )
    return list(taken.values_list("pk", flat=True))
