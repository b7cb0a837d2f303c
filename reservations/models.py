"""Per-performance inventory: the rows the reservation engine locks.

Every sellable place of a performance is one InventoryItem: a numbered seat, or one
place in a standing zone (standing zones get `capacity` anonymous items). Keeping
standing places as rows means one mechanism guards both against overselling: a
conditional UPDATE on rows that are free, where "free" includes holds whose
`held_until` has passed (expiry is lazy; the sweeper only tidies).
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class InventoryQuerySet(models.QuerySet):
    def free(self, now=None):
        now = now or timezone.now()
        return self.filter(
            Q(status=InventoryItem.Status.AVAILABLE) | Q(status=InventoryItem.Status.HELD, held_until__lte=now)
        )

    def held(self, now=None):
        now = now or timezone.now()
        return self.filter(status=InventoryItem.Status.HELD, held_until__gt=now)

    def sold(self):
        return self.filter(status=InventoryItem.Status.SOLD)


def free_condition(now, prefix: str = "") -> Q:
    """The lazy-expiry definition of "free", for use inside aggregates."""
    return Q(**{f"{prefix}status": InventoryItem.Status.AVAILABLE}) | Q(
        **{f"{prefix}status": InventoryItem.Status.HELD, f"{prefix}held_until__lte": now}
    )


def held_condition(now, prefix: str = "") -> Q:
    return Q(**{f"{prefix}status": InventoryItem.Status.HELD, f"{prefix}held_until__gt": now})


class InventoryItem(models.Model):
    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        HELD = "held", _("Held")
        SOLD = "sold", _("Sold")
        BLOCKED = "blocked", _("Blocked")

    performance = models.ForeignKey("events.Performance", on_delete=models.CASCADE, related_name="inventory")
    section = models.ForeignKey("events.Section", on_delete=models.PROTECT, related_name="+")
    # Null for a place in a standing zone.
    seat = models.ForeignKey("events.Seat", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    price_grade = models.ForeignKey("events.PriceGrade", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.AVAILABLE)
    held_until = models.DateTimeField(_("held until"), null=True, blank=True)

    objects = InventoryQuerySet.as_manager()

    class Meta:
        constraints = [
            # Standing places have seat=NULL; NULLs never collide in a unique index on
            # SQLite or MariaDB, so this constrains only numbered seats.
            models.UniqueConstraint(fields=["performance", "seat"], name="inventory_one_row_per_seat"),
            models.CheckConstraint(
                condition=~Q(status="held") | Q(held_until__isnull=False), name="inventory_hold_has_expiry"
            ),
        ]
        indexes = [models.Index(fields=["performance", "status", "held_until"])]
        verbose_name = _("inventory item")
        verbose_name_plural = _("inventory")

    def __str__(self):
        place = self.seat.label if self.seat_id else self.section.display_name
        return f"{place} ({self.get_status_display()})"
