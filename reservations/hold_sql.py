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
import functools

from django.contrib.auth import get_user_model

from events.models import PriceGrade, Seat
from ticketing.compiled import default_connection

from .models import InventoryItem, Reservation, ReservationLine

# Free right now: on sale, or held by a hold that has expired. One parameter: now.
FREE_SQL = "(i.status = 'available' OR (i.status = 'held' AND i.held_until <= %s))"


@functools.cache
def _tables() -> dict[str, str]:
    """The quoted table names, by model name (the same backend all process long)."""
    quote = default_connection().ops.quote_name
    models = (InventoryItem, Reservation, ReservationLine, Seat, PriceGrade, get_user_model())
    return {model.__name__: quote(model._meta.db_table) for model in models}


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def seat_rows(*, performance_id: int, item_ids, now: dt.datetime, user_id: int, request_token: str) -> list[tuple]:
    """For those of `item_ids` that are numbered seats of this performance:
    (item id, seat label, y, x, grade code, grade name, price, holder id, free now,
    earlier, the customer's), where `earlier` is the id of the customer's reservation
    made with this form's token, if the form was submitted before (the same on every
    row), and `the customer's` is 1 if the holder is one of the customer's own
    reservations (live or not: it matters only for a seat that is not free)."""
    connection = default_connection()
    with connection.cursor() as cursor:
        cursor.execute(
            _seat_rows_sql(len(item_ids)),
            [
                connection.ops.adapt_datetimefield_value(now),
                *(user_id, request_token),
                user_id,
                performance_id,
                *item_ids,
            ],
        )
        return cursor.fetchall()


# Keyed by how many ids a form sent, which a tampered form could make anything: bounded.
@functools.lru_cache(maxsize=32)
def _seat_rows_sql(count: int) -> str:
    t = _tables()
    return f"""
        SELECT i.id, s.label, s.y, s.x, g.code, g.name, g.price, i.reservation_id,
               CASE WHEN {FREE_SQL} THEN 1 ELSE 0 END,
               (SELECT r.id FROM {t["Reservation"]} r WHERE r.user_id = %s AND r.request_token = %s),
               CASE WHEN i.reservation_id IS NULL THEN 0 ELSE
                 (SELECT COUNT(*) FROM {t["Reservation"]} h WHERE h.id = i.reservation_id AND h.user_id = %s) END
        FROM {t["InventoryItem"]} i
        JOIN {t["Seat"]} s ON s.id = i.seat_id
        JOIN {t["PriceGrade"]} g ON g.id = i.price_grade_id
        WHERE i.performance_id = %s AND i.id IN ({_placeholders(count)})
    """


def taken_ids(
    *, performance_id: int, now: dt.datetime, keeping: int | None = None, seats_only: bool = True
) -> list[int]:
    """Ids of the places nobody can hold right now (held, sold or blocked), except
    those held by the reservation `keeping`; numbered seats only unless `seats_only`
    is false. Behind selectors.taken_place_ids and the seat map's per-view state."""
    connection = default_connection()
    with connection.cursor() as cursor:
        cursor.execute(
            _taken_sql(seats_only), [performance_id, connection.ops.adapt_datetimefield_value(now), keeping or 0]
        )
        return [row[0] for row in cursor.fetchall()]


@functools.cache
def _taken_sql(seats_only: bool) -> str:
    # `status <> 'available'` says nothing the CASE does not, but it lets the database
    # read only the index range (performance, status) of places that are not on sale:
    # a few hundred entries mid-rush instead of the whole hall, on every 409 and map view.
    return f"""
        SELECT i.id FROM {_tables()["InventoryItem"]} i
        WHERE i.performance_id = %s AND i.status <> 'available' {"AND i.seat_id IS NOT NULL" if seats_only else ""}
          AND CASE WHEN {FREE_SQL} OR (i.status = 'held' AND i.reservation_id = %s) THEN 0 ELSE 1 END = 1
    """


def lock_customer(user_id: int) -> None:
    """Lock the customer's row until the transaction ends (SQLite: one writer anyway)."""
    connection = default_connection()
    with connection.cursor() as cursor:
        cursor.execute(_lock_customer_sql(connection.features.has_select_for_update), [user_id])
        cursor.fetchall()


@functools.cache
def _lock_customer_sql(for_update: bool) -> str:
    return f"SELECT id FROM {_tables()[get_user_model().__name__]} WHERE id = %s{' FOR UPDATE' if for_update else ''}"


def live_places(*, user_id: int, performance_id: int, now: dt.datetime, excluding: int | None = None) -> int:
    """How many places the customer owns at this performance: on live holds or bought.

    Read from the customer's own reservations (index user, performance, status), a few
    rows however full the hall is: a live reservation owns every place on its lines.
    """
    live = Reservation.LIVE_HOLD_STATUSES
    connection = default_connection()
    params = [
        user_id,
        performance_id,
        excluding or 0,
        Reservation.Status.CONFIRMED,
        *live,
        connection.ops.adapt_datetimefield_value(now),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_live_places_sql(), params)
        return cursor.fetchone()[0]


@functools.cache
def _live_places_sql() -> str:
    t = _tables()
    return f"""
        SELECT COUNT(*) FROM {t["ReservationLine"]} l
        JOIN {t["Reservation"]} r ON r.id = l.reservation_id
        WHERE r.user_id = %s AND r.performance_id = %s AND r.id <> %s
          AND (r.status = %s OR (r.status IN ({_placeholders(len(Reservation.LIVE_HOLD_STATUSES))})
               AND r.expires_at > %s))
    """


def claim_seats(
    *, reservation_id: int, performance_id: int, item_ids, held_until: dt.datetime, now: dt.datetime
) -> int:
    """Hold those of `item_ids` that are free at this instant; return how many.

    The guarantee: one conditional UPDATE. MariaDB locks the rows in primary-key order
    and re-checks the condition on the newest committed version, so of two buyers of
    one seat the second finds it held and claims nothing.
    """
    connection = default_connection()
    when = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _claim_sql(len(item_ids)), [when(held_until), reservation_id, performance_id, *sorted(item_ids), when(now)]
        )
        return cursor.rowcount


@functools.lru_cache(maxsize=32)
def _claim_sql(count: int) -> str:
    return f"""
        UPDATE {_tables()["InventoryItem"]} AS i
        SET status = 'held', held_until = %s, reservation_id = %s
        WHERE i.performance_id = %s AND i.seat_id IS NOT NULL AND i.id IN ({_placeholders(count)})
          AND {FREE_SQL}
    """


def forget_statements() -> None:
    """Drop the statement texts made so far; the next call makes them afresh from
    FREE_SQL and the tables (the concurrency suite's canary changes FREE_SQL)."""
    for build in (_tables, _seat_rows_sql, _taken_sql, _lock_customer_sql, _live_places_sql, _claim_sql):
        build.cache_clear()
