"""Lookups that stay index-friendly under row-level security.

With RLS on, Postgres may only push a condition into an index scan if its functions are
LEAKPROOF. LIKE and upper() are not, so `email LIKE 'ana%'` walks every row of the workspace;
starts_with() is, and uses the varchar_pattern_ops indexes (BENCHMARKS.md, customers list).
"""

from django.db.models import CharField, Lookup


@CharField.register_lookup
class Prefix(Lookup):
    lookup_name = "prefix"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"starts_with({lhs}, {rhs})", [*lhs_params, *rhs_params]


@CharField.register_lookup
class UpperPrefix(Lookup):
    """starts_with(column, upper(value)), for the upper-cased generated name columns."""

    lookup_name = "upper_prefix"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"starts_with({lhs}, upper({rhs}))", [*lhs_params, *rhs_params]
