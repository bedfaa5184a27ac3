"""Database helpers shared by the hot paths."""

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def update_rows(objects: Sequence[models.Model], names: list[str], *, guard: dict[str, Any] | None = None) -> None:
    """Write `names` of each object with one UPDATE per row, sent as a single executemany.

    Django's bulk_update builds a CASE per field and row, which costs more than the rest of a
    batch; `guard` adds fixed conditions (`status = running`) so only rows still owned change.
    """
    if not objects:
        return
    meta, quote = objects[0]._meta, connection.ops.quote_name
    fields = [meta.get_field(name) for name in names]
    guards = [(meta.get_field(name), value) for name, value in (guard or {}).items()]
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    conditions = " AND ".join([f"{quote(meta.pk.column)} = %s", *(f"{quote(f.column)} = %s" for f, _ in guards)])
    # Identifiers come from the model, values are parameters.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {conditions}"  # noqa: S608
    guard_values = [f.get_db_prep_value(value, connection) for f, value in guards]
    params = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
        + [meta.pk.get_db_prep_value(obj.pk, connection), *guard_values]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
