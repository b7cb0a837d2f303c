import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from reservations.models import InventoryItem
from reservations.services import inventory_create

pytestmark = pytest.mark.django_db


def test_inventory_copies_each_seats_grade_from_the_event(performance):
    items = InventoryItem.objects.filter(performance=performance).select_related("seat", "price_grade")
    for item in items:
        expected = item.seat.grade_code if item.seat else "ST"
        assert item.price_grade.code == expected
        assert item.price_grade.event_id == performance.event_id
        assert item.status == InventoryItem.Status.AVAILABLE


def test_inventory_is_built_only_once(performance):
    with pytest.raises(ValidationError, match="already has its inventory"):
        inventory_create(performance=performance)
    assert InventoryItem.objects.filter(performance=performance).count() == 19


def test_an_expired_hold_counts_as_free_before_any_sweeper_runs(performance):
    now = timezone.now()
    expired, live, sold = InventoryItem.objects.filter(performance=performance, seat__isnull=False)[:3]
    InventoryItem.objects.filter(pk=expired.pk).update(status="held", held_until=now - dt.timedelta(seconds=1))
    InventoryItem.objects.filter(pk=live.pk).update(status="held", held_until=now + dt.timedelta(minutes=5))
    InventoryItem.objects.filter(pk=sold.pk).update(status="sold")
    items = InventoryItem.objects.filter(performance=performance)
    assert items.free(now).count() == 19 - 2
    assert list(items.held(now).values_list("pk", flat=True)) == [live.pk]
    assert list(items.sold().values_list("pk", flat=True)) == [sold.pk]
    assert expired.pk in items.free(now).values_list("pk", flat=True)


def test_a_hold_must_have_an_expiry(performance):
    from django.db import IntegrityError, transaction

    item = InventoryItem.objects.filter(performance=performance).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        InventoryItem.objects.filter(pk=item.pk).update(status="held", held_until=None)
