from django.utils import timezone

from .models import InventoryItem, free_condition


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
