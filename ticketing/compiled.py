"""ORM reads and inserts compiled once, for the few statements every on-sale click runs.

Django compiles a queryset afresh on every call: 0.3-0.6 ms of CPU for a one-row
lookup or insert here, several times what the database needs to answer it. On a
flash sale every hold pays that for the performance it is for, the signed-in customer
and each row it writes (docs/benchmarks.md). These helpers write the same SQL once per
model and build instances the way the ORM does (its own column list, converters and
`from_db`), so a field added to a model is picked up here too.

Not for general use: no signals are sent, querysets' managers and defaults on the
database side are skipped. The callers are listed in docs/benchmarks.md.
"""

import functools
from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model


def default_connection():
    """This thread's connection to the default database, looked up once.

    `django.db.connection` is a proxy: each attribute read (`.ops`, `.cursor`,
    `.alias`, and every `get_db_prep_value(..., connection)` inside a field) is a
    thread-local lookup of its own, about fifty on one hold. Callers here take the
    connection once and pass it on.
    """
    return connections[DEFAULT_DB_ALIAS]


class RowFetch:
    """One row of `model` and, in the same statement, the rows its foreign keys in
    `related` point at, found by a hand-written WHERE over the aliases `t` (the model)
    and `r0`, `r1`... (the related models, in the order given)."""

    def __init__(self, model: type[Model], *related: str, where: str):
        self.model = model
        self.related = [model._meta.get_field(name) for name in related]
        self.where = where
        self._compiled = None

    def _compile(self, connection):
        # Compiled once per process for the default database; its converters depend only
        # on the backend, which every thread's connection shares.
        quote = connection.ops.quote_name
        models = [(self.model, "t")] + [(f.related_model, f"r{i}") for i, f in enumerate(self.related)]
        columns, converters, shapes = [], [], []
        for model, alias in models:
            fields = model._meta.concrete_fields
            columns += [f"{alias}.{quote(f.column)}" for f in fields]
            for f in fields:
                col = f.get_col(alias)
                found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                converters.append((f, found))
            shapes.append((model, [f.attname for f in fields]))
        joins = "".join(
            f" JOIN {quote(f.related_model._meta.db_table)} r{i}"
            f" ON r{i}.{quote(f.target_field.column)} = t.{quote(f.column)}"
            for i, f in enumerate(self.related)
        )
        sql = f"SELECT {', '.join(columns)} FROM {quote(self.model._meta.db_table)} t{joins} WHERE {self.where}"
        self._compiled = (sql, converters, shapes)
        return self._compiled

    def one(self, params: Sequence) -> Model | None:
        values = self.values(params)
        return None if values is None else self.build(values)

    def values(self, params: Sequence) -> list | None:
        """The row's values, converted as the ORM converts them, or None: what `build`
        makes instances of (a caller may keep these and build afresh each time)."""
        connection = default_connection()
        sql, converters, _ = self._compiled or self._compile(connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        values = []
        for (field, field_converters), value in zip(converters, row, strict=True):
            for convert in field_converters:
                value = convert(value, field, connection)
            values.append(value)
        return values

    def build(self, values: list) -> Model:
        """New instances from `values`, the main one with its related ones attached."""
        _, _, shapes = self._compiled or self._compile(default_connection())
        instances, start = [], 0
        for model, attnames in shapes:
            instances.append(model.from_db(DEFAULT_DB_ALIAS, attnames, values[start : start + len(attnames)]))
            start += len(attnames)
        main = instances[0]
        for field, instance in zip(self.related, instances[1:], strict=True):
            field.set_cached_value(main, instance)
        return main


def insert(instances: Sequence[Model]) -> None:
    """INSERT unsaved instances of one model in one statement, as save(force_insert=True)
    would without signals. Sets the primary key when there is one instance (the
    database's own auto-increment value); several are left without one (the hold path
    never reads its lines' keys)."""
    if not instances:
        return
    connection = default_connection()
    fields, sql = _insert_statement(type(instances[0]), len(instances), connection.vendor)
    params = []
    for instance in instances:
        params += [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if len(instances) == 1:
            setattr(instances[0], instances[0]._meta.pk.attname, cursor.lastrowid)
    for instance in instances:
        instance._state.adding = False
        instance._state.db = DEFAULT_DB_ALIAS


@functools.lru_cache(maxsize=64)
def _insert_statement(model: type[Model], rows: int, vendor: str) -> tuple[list, str]:
    """The fields written and the INSERT text for `rows` rows of `model`, made once."""
    meta = model._meta
    fields = [f for f in meta.local_concrete_fields if not f.generated and not (f.primary_key and f.db_returning)]
    quote = default_connection().ops.quote_name
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([placeholders] * rows)}"
    )
    return fields, sql
