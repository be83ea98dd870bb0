"""What-ifs for the incremental plan: changes to `destinations.syncing`, measured here and not
applied there (the engine has its owner). Each writes the same record rows and counts.

- `rewritten_plan_sql`: the engine's statement (from `plan_sql`, so the same identifiers,
  consent and vendor expressions and parameters) with three changes: the `members` CTE
  MATERIALIZED (inlined, its `ids` expression is evaluated once per reference in `desired`:
  up to three SHA-256 pairs a member); the writes driven by one FULL JOIN of `desired` with the
  record that keeps only the rows that differ (the INSERT … ON CONFLICT no longer locks, and
  WAL-logs, every unchanged row; the removal is a join on the record's id, not an anti-join
  sorted on disk); and the caller runs it with `SET LOCAL jit = off`.
- The scoped plan is the engine's own (`customer_ids`, what streaming runs use), given the
  customers that may have changed: `CANDIDATES_SQL` finds them as a scheduled run could, from
  memberships that started since the last run, records whose customer is no longer a member,
  and customers updated since the last run.
"""

from __future__ import annotations

_ENGINE_WRITES_START = "), changed AS ("
_ENGINE_WRITES_END = "\nSELECT skip, count(*)"

_DIFF_WRITES = """), diff AS MATERIALIZED (
    SELECT coalesce(d.customer_id, r.customer_id) AS customer_id, d.wanted, r.id AS record_id
      FROM (SELECT customer_id, wanted FROM desired WHERE wanted IS NOT NULL) d
      FULL JOIN (SELECT id, customer_id, wanted FROM destinations_syncrecord
                  WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s
                    AND wanted IS NOT NULL) r ON r.customer_id = d.customer_id
     WHERE d.wanted IS DISTINCT FROM r.wanted
), changed AS (
    INSERT INTO destinations_syncrecord AS r
           (workspace_id, sync_id, customer_id, wanted, batch_op, attempts, error, updated_at)
    SELECT %(workspace)s, %(sync)s, customer_id, wanted, '', 0, '', %(now)s
      FROM diff WHERE wanted IS NOT NULL
    ON CONFLICT (workspace_id, sync_id, customer_id) DO UPDATE
       SET wanted = EXCLUDED.wanted, updated_at = EXCLUDED.updated_at
     WHERE r.wanted IS DISTINCT FROM EXCLUDED.wanted
    RETURNING 1
), unwanted AS (
    UPDATE destinations_syncrecord r SET wanted = NULL, updated_at = %(now)s
      FROM diff
     WHERE diff.wanted IS NULL AND r.id = diff.record_id
    RETURNING 1
)"""


def rewritten_plan_sql(engine_sql: str) -> str:
    """The unscoped engine statement with the changes above (same parameters)."""
    start, end = engine_sql.index(_ENGINE_WRITES_START), engine_sql.index(_ENGINE_WRITES_END)
    assert "WITH members AS (" in engine_sql
    assert "= ANY(%(customers)s)" not in engine_sql, "the what-if is for unscoped plans"
    sql = engine_sql[:start] + _DIFF_WRITES + engine_sql[end:]
    return sql.replace("WITH members AS (", "WITH members AS MATERIALIZED (", 1)


CANDIDATES_SQL = """
SELECT customer_id FROM audiences_membership
 WHERE workspace_id = %(workspace)s AND audience_id = %(audience)s AND since > %(since)s
UNION
SELECT r.customer_id FROM destinations_syncrecord r
 WHERE r.workspace_id = %(workspace)s AND r.sync_id = %(sync)s AND r.wanted IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM audiences_membership m
                    WHERE m.workspace_id = r.workspace_id AND m.audience_id = %(audience)s
                      AND m.customer_id = r.customer_id)
UNION
SELECT id FROM profiles_customer WHERE workspace_id = %(workspace)s AND updated_at > %(since)s
"""
