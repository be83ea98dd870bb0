"""Set-based moves: what the engine does one enrollment at a time, done for a whole batch in
one statement where no step decides anything per customer.

- `advance_claimed`: the tick's claim. Due enrollments are locked with SKIP LOCKED, and in the
  same statement those whose move is *plain* go on: a delay or wait that is over (passed or
  timed out) into an exit, a delay by a duration or a wait for an event; or, just entered,
  into one of those. The step rows and the enrollment are written exactly as
  `journeys.engine.advance` writes them (the same outcome, visit, detail and times), so the
  two paths are interchangeable and a crash between them changes nothing. The rest (sends,
  branches, splits, webhooks, profile updates, delays by a date or time of day, audience
  waits, resolved waits) is returned for the engine.
- `enroll_many`: an audience trigger entering many customers at once, for journeys without
  entry conditions in the rule language (those need the per-customer evaluator): the entry
  checks of `journeys.engine.enroll` (audience, anonymous, re-entry, one open enrollment) as
  one `INSERT … SELECT … ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.db import connection

from journeys.engine import bucket, duration
from journeys.models import Journey, JourneyVersion

# Steps an enrollment can be started on in SQL: the start writes what `_wait` or the exit
# step writes, and nothing depends on the customer.
_PLAIN_STARTS = ("exit", "delay", "wait_event")


def _start(step: dict, now: datetime) -> tuple[bool, datetime | None, dict | None] | None:
    """(is exit, until, what it waits for) for a step started now; None: not plain."""
    kind = step["type"]
    if kind == "exit":
        return True, None, None
    if kind == "delay" and "duration" in step:
        until = now + duration(step["duration"])
        return (False, until, {"delay": True}) if until > now else None
    if kind == "wait_event":
        return False, now + duration(step["timeout"]), {"event": step["event"]}
    return None


def transitions(versions: list[JourneyVersion], now: datetime) -> list[tuple]:
    """Per (version, step): the plain moves from it, as rows (version, step, is pass, outcome,
    target, is exit, until, what it waits for) of the statement's table."""
    rows = []
    for version in versions:
        steps = (version.graph or {}).get("steps") or {}
        for step_id, step in steps.items():
            kind = step["type"]
            begun = _start(step, now) if kind in _PLAIN_STARTS else None
            if begun is not None:  # just entered (or moved here by the engine), not yet begun
                rows.append((version.id, step_id, False, "", step_id, *begun))
            if kind == "delay":
                target, outcome = step["next"], "passed"
            elif kind in ("wait_event", "wait_audience"):
                target, outcome = step["timeout_next"], "timed_out"
            else:
                continue
            started = _start(steps[target], now) if target in steps else None
            if started is not None:  # over (its time came, nothing resolved it): into target
                rows.append((version.id, step_id, True, outcome, target, *started))
    return rows


_ADVANCE_SQL = """
WITH t AS (
    SELECT * FROM unnest(%(version)s::bigint[], %(step)s::text[], %(pass)s::boolean[],
                         %(outcome)s::text[], %(target)s::text[], %(is_exit)s::boolean[],
                         %(until)s::timestamptz[], %(until_iso)s::text[], %(spec)s::jsonb[])
        AS t(version_id, step, pass, outcome, target, is_exit, until, until_iso, spec)
),
claimed AS (  -- one table, in the due index's order (a join here made some plans sort)
    SELECT e.id, e.workspace_id, e.journey_id, e.version_id, e.customer_id, e.current_step,
           e.state, e.visits, e.waiting_for
      FROM journeys_enrollment e
     WHERE e.workspace_id = %(workspace)s AND e.state IN ('active', 'waiting')
       AND e.next_run_at <= %(now)s AND e.journey_id = ANY(%(journeys)s)
     ORDER BY e.next_run_at
     LIMIT %(limit)s
       FOR UPDATE OF e SKIP LOCKED
),
plain AS (
    SELECT c.id, c.workspace_id, c.journey_id, c.current_step, c.visits, t.pass, t.outcome,
           t.target, t.is_exit, t.until, t.until_iso, t.spec,
           coalesce((c.visits ->> c.current_step)::int, 1) AS visit,
           CASE WHEN t.pass THEN coalesce((c.visits ->> t.target)::int, 0) + 1
                ELSE coalesce((c.visits ->> t.target)::int, 1) END AS target_visit
      FROM claimed c JOIN t ON t.version_id = c.version_id AND t.step = c.current_step
      JOIN journeys_journey j ON j.id = c.journey_id AND j.status = 'active'  -- still active
     WHERE CASE WHEN t.pass
                THEN c.state = 'waiting' AND c.waiting_for IS NOT NULL
                     AND coalesce(c.waiting_for ->> 'resolved', '') = ''
                     AND (c.waiting_for ->> 'until')::timestamptz <= %(now)s
                ELSE c.state = 'active' AND c.waiting_for IS NULL END
       AND EXISTS (SELECT 1 FROM profiles_customer p
                    WHERE p.workspace_id = c.workspace_id AND p.id = c.customer_id)
),
logged AS (
    INSERT INTO journeys_steprun (workspace_id, enrollment_id, journey_id, step, visit, outcome,
                                  next_step, message_id, detail, started_at, finished_at)
    SELECT workspace_id, id, journey_id, current_step, visit, outcome, target, NULL::bigint,
           '{}'::jsonb,
           %(now)s, %(now)s
      FROM plain WHERE pass
    UNION ALL
    SELECT workspace_id, id, journey_id, target, target_visit,
           CASE WHEN is_exit THEN 'exited' ELSE 'waiting' END, '', NULL::bigint,
           CASE WHEN is_exit THEN '{}'::jsonb ELSE jsonb_build_object('until', until_iso) END,
           %(now)s, CASE WHEN is_exit THEN %(now)s::timestamptz END
      FROM plain
    ON CONFLICT (workspace_id, enrollment_id, step, visit) DO UPDATE
       SET journey_id = excluded.journey_id, outcome = excluded.outcome,
           next_step = excluded.next_step, message_id = excluded.message_id,
           detail = excluded.detail, finished_at = excluded.finished_at
),
moved AS (
    UPDATE journeys_enrollment e
       SET current_step = p.target,
           visits = CASE WHEN p.pass THEN e.visits || jsonb_build_object(p.target, p.target_visit)
                         ELSE e.visits END,
           state = CASE WHEN p.is_exit THEN 'completed' ELSE 'waiting' END,
           next_run_at = CASE WHEN p.is_exit THEN NULL ELSE p.until END,
           waiting_for = CASE WHEN p.is_exit THEN NULL
                              ELSE p.spec || jsonb_build_object('since', %(since)s::text,
                                                                'until', p.until_iso) END,
           exit_reason = CASE WHEN p.is_exit THEN 'reached an exit step' ELSE e.exit_reason END,
           finished_at = CASE WHEN p.is_exit THEN %(now)s ELSE e.finished_at END
      FROM plain p
     WHERE e.id = p.id
    RETURNING e.id
)
SELECT c.id, c.id IN (SELECT id FROM moved) FROM claimed c
"""


def advance_statement(*, workspace_id: int, versions: list[JourneyVersion], now: datetime,
                      limit: int) -> tuple[str, dict]:  # fmt: skip
    """The claim-and-move statement and its parameters (`advance_claimed` runs it)."""
    rows = transitions(versions, now)
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    params = dict(zip(("version", "step", "pass", "outcome", "target", "is_exit", "until"),
                      (list(c) for c in columns[:7]), strict=True))  # fmt: skip
    params["until_iso"] = [until.isoformat() if until else None for until in columns[6]]
    params["spec"] = [json.dumps(spec) if spec is not None else None for spec in columns[7]]
    active = sorted({v.journey_id for v in versions if v.journey.status == Journey.Status.ACTIVE})
    params.update(workspace=workspace_id, journeys=active, now=now, since=now.isoformat(),
                  limit=limit)  # fmt: skip
    return _ADVANCE_SQL, params


def advance_claimed(*, workspace_id: int, versions: list[JourneyVersion], now: datetime,
                    limit: int) -> tuple[int, list[int]]:  # fmt: skip
    """Claim up to `limit` due enrollments of the journeys among `versions` that are active and
    make every plain move, in one statement (call in a transaction of its own, under the
    workspace's scope). Returns how many were claimed and the ids the engine must advance."""
    sql, params = advance_statement(
        workspace_id=workspace_id, versions=versions, now=now, limit=limit
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        claimed = cursor.fetchall()
    return len(claimed), [id_ for id_, moved in claimed if not moved]


_ENROLL_SQL = """
INSERT INTO journeys_enrollment (workspace_id, journey_id, version_id, customer_id, entry_key,
                                 state, current_step, next_run_at, waiting_for, visits, context,
                                 is_holdout, variant, idempotency_key, entered_at, exit_reason)
SELECT c.workspace_id, %(journey)s, %(version)s, c.id, '', 'active', %(start)s, %(now)s, NULL,
       %(visits)s::jsonb, %(context)s::jsonb, c.id = ANY(%(holdouts)s), '', '', %(now)s, ''
  FROM unnest(%(ids)s::bigint[]) AS x(id)
  JOIN profiles_customer c ON c.workspace_id = %(workspace)s AND c.id = x.id
 WHERE {anonymous} AND {audience}
   AND NOT EXISTS (
        SELECT 1 FROM journeys_enrollment o
         WHERE o.workspace_id = %(workspace)s AND o.customer_id = c.id
           AND o.journey_id = %(journey)s AND o.entry_key = '' AND {earlier})
 ORDER BY c.id
ON CONFLICT (workspace_id, journey_id, customer_id, entry_key)
   WHERE state IN ('active', 'waiting') DO NOTHING
"""
_MEMBER = """EXISTS (SELECT 1 FROM audiences_membership m WHERE m.workspace_id = %(workspace)s
                  AND m.audience_id = %(audience)s AND m.customer_id = c.id)"""
# Which earlier enrollment keeps a customer out, by the re-entry mode.
_EARLIER = {
    "once": "true",
    "after_days": "(o.state IN ('active', 'waiting') OR o.entered_at > %(after)s)",
    "always": "o.state IN ('active', 'waiting')",
}


def can_enroll_many(version: JourneyVersion) -> bool:
    """Whether a version's entry needs nothing per customer beyond SQL (no rule conditions)."""
    return not (version.graph or {}).get("entry_rules")


def enroll_many(*, version: JourneyVersion, customer_ids: list[int], now: datetime,
                context: dict) -> int:  # fmt: skip
    """Enter these customers into a live version (no entry key, no idempotency key), by the
    same rules as `journeys.engine.enroll`; returns how many entered."""
    journey = version.journey
    graph = version.graph
    reentry = graph.get("reentry") or {"mode": "once"}
    percent = graph.get("holdout_percent", 0)
    holdouts = [
        c for c in customer_ids if percent and bucket("holdout", journey.id, c, "") < percent
    ]
    sql = _ENROLL_SQL.format(
        anonymous="true" if graph.get("allow_anonymous") else "NOT c.is_anonymous",
        audience=_MEMBER if graph.get("audience_id") else "true",
        earlier=_EARLIER[reentry["mode"]],
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {
            "workspace": journey.workspace_id, "journey": journey.id, "version": version.id,
            "start": graph["start"], "now": now, "visits": json.dumps({graph["start"]: 1}),
            "context": json.dumps(context), "holdouts": holdouts, "ids": sorted(customer_ids),
            "audience": graph.get("audience_id"),
            "after": now - timedelta(days=reentry.get("days") or 0),
        })  # fmt: skip
        return cursor.rowcount
