"""The one definition of a customer row for raw, set-based inserts (ingestion and imports).

Both write a batch of customers with one `INSERT … SELECT` (several times faster than the ORM's
bulk_create, BENCHMARKS.md). Their column lists come from the model here, never by hand: a
column the statement does not give is written with the model's default (or left to its
database default), so adding a column to `Customer` never breaks them.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import NOT_PROVIDED

from profiles.models import Customer


def customer_insert_sql(*, values: dict[str, str], source: str, suffix: str = "") -> tuple:
    """`INSERT INTO profiles_customer (…) SELECT … FROM <source> <suffix>`, and its parameters.

    `values` maps a column to its SQL expression over `source` (e.g. "v.email" or
    "%(now)s"); the caller adds its own parameters to the ones returned, which hold the
    defaults of the other columns (named `default_<column>`).
    """
    columns, expressions, params = [], [], {}
    for field in Customer._meta.concrete_fields:
        if field.primary_key or field.generated:
            continue
        column = field.column
        if column in values:
            expression = values[column]
        elif field.db_default is not NOT_PROVIDED:
            continue
        else:
            expression = f"CAST(%(default_{column})s AS {field.cast_db_type(connection)})"
            params[f"default_{column}"] = field.get_db_prep_save(field.get_default(), connection)
        columns.append(column)
        expressions.append(expression)
    unknown = sorted(set(values) - set(columns))
    if unknown:
        raise ValueError(f"profiles_customer has no column {unknown[0]!r}")
    sql = (
        f"INSERT INTO {Customer._meta.db_table} ({', '.join(columns)})\n"
        f"SELECT {', '.join(expressions)}\n  FROM {source}\n{suffix}"
    )
    return sql, params


def customer_record_definition(columns) -> str:
    """`name type, …` of these customer columns, for `jsonb_to_recordset(…) AS v(…)`."""
    fields = [Customer._meta.get_field(name) for name in columns]
    return ", ".join(f"{field.column} {field.cast_db_type(connection)}" for field in fields)
