import uuid

from reservations.models import InventoryItem
from reservations.services import Selection, reservation_hold


def token() -> str:
    return uuid.uuid4().hex


def seat_items(performance, *labels):
    """Inventory rows of the named seats, in the order given."""
    items = {
        i.seat.label: i
        for i in InventoryItem.objects.filter(performance=performance).select_related("seat")
        if i.seat_id
    }
    return [items[label] for label in labels]


def hold(user, performance, *labels, standing=(), **kwargs):
    ids = [item.pk for item in seat_items(performance, *labels)]
    return hold_items(user, performance, *ids, standing=standing, **kwargs)


def hold_items(user, performance, *item_ids, standing=(), **kwargs):
    """Hold inventory rows by id (no lookup first: what racing threads want)."""
    return reservation_hold(
        user=user,
        performance=performance,
        selection=Selection(item_ids=tuple(item_ids), standing=tuple(standing)),
        request_token=kwargs.pop("request_token", None) or token(),
        **kwargs,
    )
