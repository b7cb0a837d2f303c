"""Hand-written SQL for the statements every on-sale click runs.

The ORM compiles each query afresh on every call, which costs 0.3-0.8 ms of CPU
here: most of a hold's cost in bench/flash_sale.py, where two cores must answer
hundreds of holds a second (docs/benchmarks.md). These statements are plain
enough to write once, and they read the same on SQLite and MariaDB. The inserts are
built from the models' own fields (ticketing/compiled.py), so a new model field cannot
be forgotten there.

FREE_SQL is free_condition (models.py) in SQL; reservations/tests/test_hold_sql.py checks
that the two agree on every kind of row.
"""

import datetime as dt

from django.db import connection

from events.models import PriceGrade, Seat

from .models import InventoryItem, Reservation, ReservationLine

# Free right now: on sale, or held by a hold that has expired. One parameter: now.
FREE_SQL = "(i.status = 'available' OR (i.status = 'held' AND i.held_until <= %s))"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _when(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


def seat_rows(*, performance_id: int, item_ids, now: dt.datetime, user_id: int, request_token: str) -> list[tuple]:
    """For those of `item_ids` that are numbered seats of this performance:
    (item id, seat label, y, x, grade code, grade name, price, holder id, free now,
    earlier), where `earlier` is the id of the customer's reservation made with this
    form's token, if the form was submitted before (the same on every row)."""
    sql = f"""
        SELECT i.id, s.label, s.y, s.x, g.code, g.name, g.price, i.reservation_id,
               CASE WHEN {FREE_SQL} THEN 1 ELSE 0 END,
               (SELECT r.id FROM {_table(Reservation)} r WHERE r.user_id = %s AND r.request_token = %s)
        FROM {_table(InventoryItem)} i
        JOIN {_table(Seat)} s ON s.id = i.seat_id
        JOIN {_table(PriceGrade)} g ON g.id = i.price_grade_id
        WHERE i.performance_id = %s AND i.id IN ({_placeholders(item_ids)})
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [_when(now), user_id, request_token, performance_id, *item_ids])
        return cursor.fetchall()


def taken_ids(
    *, performance_id: int, now: dt.datetime, keeping: int | None = None, seats_only: bool = True
) -> list[int]:
    """Ids of the places nobody can hold right now (held, sold or blocked), except
    those held by the reservation `keeping`; numbered seats only unless `seats_only`
    is false. Behind selectors.taken_place_ids and the seat map's per-view state."""
    sql = f"""
        SELECT i.id FROM {_table(InventoryItem)} i
        WHERE i.performance_id = %s {"AND i.seat_id IS NOT NULL" if seats_only else ""}
          AND CASE WHEN {FREE_SQL} OR (i.status = 'held' AND i.reservation_id = %s) THEN 0 ELSE 1 END = 1
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [performance_id, _when(now), keeping or 0])
        return [row[0] for row in cursor.fetchall()]


def lock_customer(user_id: int) -> None:
    """Lock the customer's row until the transaction ends (SQLite: one writer anyway)."""
    from django.contrib.auth import get_user_model

    suffix = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {_table(get_user_model())} WHERE id = %s{suffix}", [user_id])
        cursor.fetchall()


def live_places(*, user_id: int, performance_id: int, now: dt.datetime, excluding: int | None = None) -> int:
    """How many places the customer owns at this performance: on live holds or bought.

    Read from the customer's own reservations (index user, performance, status), a few
    rows however full the hall is: a live reservation owns every place on its lines.
    """
    live = Reservation.LIVE_HOLD_STATUSES
    sql = f"""
        SELECT COUNT(*) FROM {_table(ReservationLine)} l
        JOIN {_table(Reservation)} r ON r.id = l.reservation_id
        WHERE r.user_id = %s AND r.performance_id = %s AND r.id <> %s
          AND (r.status = %s OR (r.status IN ({_placeholders(live)}) AND r.expires_at > %s))
    """
    params = [user_id, performance_id, excluding or 0, Reservation.Status.CONFIRMED, *live, _when(now)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def claim_seats(
    *, reservation_id: int, performance_id: int, item_ids, held_until: dt.datetime, now: dt.datetime
) -> int:
    """Hold those of `item_ids` that are free at this instant; return how many.

    The guarantee: one conditional UPDATE. MariaDB locks the rows in primary-key order
    and re-checks the condition on the newest committed version, so of two buyers of
    one seat the second finds it held and claims nothing.
    """
    sql = f"""
        UPDATE {_table(InventoryItem)} AS i
        SET status = 'held', held_until = %s, reservation_id = %s
        WHERE i.performance_id = %s AND i.seat_id IS NOT NULL AND i.id IN ({_placeholders(item_ids)})
          AND {FREE_SQL}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [_when(held_until), reservation_id, performance_id, *sorted(item_ids), _when(now)])
        return cursor.rowcount
