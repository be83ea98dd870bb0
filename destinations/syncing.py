"""The audience-sync engine: plan in SQL, send in batches, record what the destination holds.

A run (`SyncRun`, a masivo.jobs job) goes through phases, each resumable after a crash:

    plan ──► remove ──► add ──► finish          (incremental, and full without replace)
    plan ──► replace ─────────► finish          (full, where the connector replaces)

- **plan**: one statement sets each record row's `wanted` (the hashed identifiers the
  destination should hold) from today's consented membership, and counts the members skipped
  by reason. Nothing is loaded into Python; the difference between `sent` and `wanted` is the
  work (models/syncs.py).
- **remove / add / replace**: a batch is taken by marking its rows with the run and a
  sequence number (committed), sent outside any transaction, then confirmed (`sent = wanted`,
  committed). After a crash, rows still marked are the batch in flight: it is sent again
  with the same session id and sequence number, which the platform applies once. Rows the
  platform refused are marked failed for this run and retried by the next.
- **finish**: the connector's last step (run a Google Ads job and wait for it), the remote
  size, the counts.

Throttling and platform outages (RetryLater) put the run back in the queue with backoff and
jitter (and at least the platform's `retry_after`); each confirmed batch resets the budget,
so only consecutive failures use it up, and a run that spends it is dead-lettered (replay
starts a new run from the record). A broken destination (revoked credentials) is disabled.
One destination's trouble never holds another's runs: each run is its own task.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from destinations.connectors import connector_for
from destinations.connectors.base import (
    REPLACE,
    BatchRejected,
    Connector,
    ConnectorError,
    DestinationBroken,
    Member,
    RerunNeeded,
    RetryLater,
    Session,
    StillRunning,
)
from destinations.identifiers import identifiers_sql
from destinations.models import AudienceSync, Destination, SyncRun
from destinations.ratelimit import request_slot
from masivo.jobs import TRANSIENT_ERRORS, job_claim, job_fail, job_heartbeat, job_succeed
from masivo.sql import server_bound_cursor
from profiles.consent import consent_allows_sql, vendor_allows_sql
from profiles.models import ProfileSettings

logger = logging.getLogger(__name__)

MAX_RERUNS = 2
STILL_RUNNING_FOR_AT_MOST = timedelta(hours=48)
MAX_ERROR_SAMPLES = 20
REMOVE, ADD, REPLACE_OP = "remove", "add", "replace"


class SkipReason:
    NO_CONSENT = "no_consent"
    NO_VENDOR_CONSENT = "no_vendor_consent"
    NO_IDENTIFIER = "no_identifier"


def _binder(params: dict):
    def bind(value) -> str:
        name = f"p{len(params)}"
        params[name] = value
        return f"%({name})s"

    return bind


# Plan -----------------------------------------------------------------------------------------

# `members` is materialized so each member's identifiers are hashed once (inlined, the
# expression ran three times), and only rows whose `wanted` differs from the record are
# written: an upsert of every member would lock (and log) the 99 % that did not change.
_PLAN_SQL = """
WITH members AS MATERIALIZED (
    SELECT c.id AS customer_id, {identifiers} AS ids,
           CASE WHEN NOT {purpose} THEN 'no_consent'
                WHEN NOT {vendor} THEN 'no_vendor_consent' END AS refusal
      FROM audiences_membership m
      JOIN profiles_customer c ON c.id = m.customer_id AND c.workspace_id = m.workspace_id
     WHERE m.workspace_id = %(workspace)s AND m.audience_id = %(audience)s{member_scope}
), desired AS (
    SELECT customer_id,
           CASE WHEN refusal IS NULL AND ids <> '{{}}'::jsonb THEN ids END AS wanted,
           COALESCE(refusal, CASE WHEN ids = '{{}}'::jsonb THEN 'no_identifier' END) AS skip
      FROM members
), diff AS MATERIALIZED (
    SELECT coalesce(d.customer_id, r.customer_id) AS customer_id, d.wanted, r.id AS record_id
      FROM (SELECT customer_id, wanted FROM desired WHERE wanted IS NOT NULL) d
      FULL JOIN (SELECT id, customer_id, wanted FROM destinations_syncrecord
                  WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s
                    AND wanted IS NOT NULL{record_scope}) r ON r.customer_id = d.customer_id
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
)
SELECT skip, count(*) FROM desired WHERE skip IS NOT NULL GROUP BY skip
 UNION ALL SELECT '_changed', count(*) FROM changed
 UNION ALL SELECT '_unwanted', count(*) FROM unwanted
"""
# Rows that hold nothing and should hold nothing (a planned add whose customer left before it
# was sent) are no work: they go.
_FORGET_SQL = """
DELETE FROM destinations_syncrecord
 WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s
   AND sent IS NULL AND wanted IS NULL
"""
# A full sync without replace sends every wanted member again.
_RESEND_SQL = """
UPDATE destinations_syncrecord SET sent = NULL
 WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s
   AND wanted IS NOT NULL AND sent = wanted
"""
_WORK_SQL = """
SELECT count(*) FILTER (WHERE sent IS NOT NULL), count(*) FILTER (WHERE wanted IS NOT NULL)
  FROM destinations_syncrecord
 WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND sent IS DISTINCT FROM wanted
"""


def plan_sql(sync: AudienceSync, connector: type[Connector], settings: ProfileSettings,
             *, customer_ids: list[int] | None, now: datetime) -> tuple[str, dict]:  # fmt: skip
    """The plan statement for a sync and its parameters (also used by bench/destinations)."""
    params: dict = {
        "workspace": sync.workspace_id, "audience": sync.audience_id, "sync": sync.id,
        "now": now, "vendor_key": sync.destination.key, "customers": customer_ids,
    }  # fmt: skip
    bind = _binder(params)
    if connector.consent_purpose:
        params["purpose"] = connector.consent_purpose
        opt_out = settings.consent_regime == ProfileSettings.ConsentRegime.OPT_OUT
        purpose = consent_allows_sql("c.consent", "%(purpose)s", opt_out=opt_out, bind=bind)
    else:
        purpose = "true"
    vendor = vendor_allows_sql(
        "c.consent_vendors", "%(vendor_key)s", required=settings.vendor_consent_required,
        bind=bind,
    )  # fmt: skip
    scoped = customer_ids is not None
    sql = _PLAN_SQL.format(
        identifiers=identifiers_sql(connector.platform, sync.identifiers, "c"),
        purpose=purpose,
        vendor=vendor,
        member_scope=(
            " AND m.customer_id = ANY(%(customers)s) AND c.id = ANY(%(customers)s)"
            if scoped
            else ""
        ),
        record_scope=" AND customer_id = ANY(%(customers)s)" if scoped else "",
    )
    return sql, params


def _plan(run: SyncRun, sync: AudienceSync, connector: type[Connector], replaces: bool) -> None:
    settings = ProfileSettings.objects.filter(workspace_id=sync.workspace_id).first()
    settings = settings or ProfileSettings(workspace_id=sync.workspace_id)
    now = timezone.now()
    sql, params = plan_sql(sync, connector, settings, customer_ids=run.customer_ids, now=now)
    with transaction.atomic():
        with server_bound_cursor() as cursor:
            # Compiling this statement costs more than it saves (bench/destinations).
            cursor.execute("SELECT set_config('jit', 'off', true)")
            cursor.execute(sql, params)
            counts = dict(cursor.fetchall())
        with connection.cursor() as cursor:
            cursor.execute(_FORGET_SQL, params)
            if run.mode == AudienceSync.Mode.FULL and not replaces:
                cursor.execute(_RESEND_SQL, params)
            cursor.execute(_WORK_SQL, params)
            to_remove, to_add = cursor.fetchone()
            if replaces:
                cursor.execute(
                    "SELECT count(*) FILTER (WHERE wanted IS NOT NULL),"
                    " count(*) FILTER (WHERE wanted IS NULL AND sent IS NOT NULL)"
                    " FROM destinations_syncrecord"
                    " WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s",
                    params,
                )
                to_add, to_remove = cursor.fetchone()
        skipped = {reason: count for reason, count in counts.items() if not reason.startswith("_")}
        run.phase = SyncRun.Phase.REPLACE if replaces else SyncRun.Phase.REMOVE
        run.session_id = secrets.randbits(62) or 1
        run.batch_seq = 0
        run.remote_state = {}
        run.to_add, run.to_remove, run.skipped = to_add, to_remove, skipped
        job_heartbeat(
            run, phase=run.phase, session_id=run.session_id, batch_seq=0, remote_state={},
            to_add=to_add, to_remove=to_remove, skipped=skipped, added=0, removed=0, failed=0,
        )  # fmt: skip


# Batches --------------------------------------------------------------------------------------

# Rows of the batch in flight (marked, not confirmed), after a crash.
_IN_FLIGHT_SQL = """
SELECT customer_id, batch_seq, batch_op, CASE WHEN batch_op = 'remove' THEN sent ELSE wanted END
  FROM destinations_syncrecord
 WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s
   AND run_id = %(run)s AND batch_seq IS NOT NULL
 ORDER BY batch_seq, customer_id
"""
# Confirmed removes and adds no longer match their condition; confirmed replace rows keep the
# run's id. Rows in flight in this run are the crash path's (`_in_flight`), not taken again.
_NOT_IN_FLIGHT = " AND NOT (run_id IS NOT DISTINCT FROM %(run)s AND batch_seq IS NOT NULL)"
_PENDING = {
    REMOVE: "sent IS NOT NULL AND sent IS DISTINCT FROM wanted" + _NOT_IN_FLIGHT,
    ADD: "wanted IS NOT NULL AND sent IS NULL" + _NOT_IN_FLIGHT,
    REPLACE_OP: "wanted IS NOT NULL AND run_id IS DISTINCT FROM %(run)s"
    " AND customer_id > %(after)s",
}
# The next batch: pending rows not yet tried in this run, marked with the run and the batch's
# number (one more than the limit is looked at, to know whether this batch is the last).
_TAKE_SQL = """
WITH next AS (
    SELECT id, customer_id FROM destinations_syncrecord
     WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND {pending}
       AND failed_run_id IS DISTINCT FROM %(run)s
     ORDER BY customer_id
     LIMIT %(limit)s + 1
), batch AS (
    SELECT id FROM next ORDER BY customer_id LIMIT %(limit)s
), marked AS (
    UPDATE destinations_syncrecord r
       SET run_id = %(run)s, batch_seq = %(seq)s, batch_op = %(op)s
      FROM batch WHERE r.id = batch.id
    RETURNING r.customer_id, {identifiers}
)
SELECT customer_id, identifiers, (SELECT count(*) FROM next) > %(limit)s FROM marked
 ORDER BY customer_id
"""
_CONFIRM_SQL = {
    # Removed: rows that should hold nothing go; changed ones hold nothing until re-added.
    REMOVE: [
        """DELETE FROM destinations_syncrecord
            WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND run_id = %(run)s
              AND batch_seq = %(seq)s AND wanted IS NULL AND NOT (customer_id = ANY(%(failed)s))""",
        """UPDATE destinations_syncrecord SET sent = NULL, batch_seq = NULL, attempts = 0,
                  error = '', updated_at = %(now)s
            WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND run_id = %(run)s
              AND batch_seq = %(seq)s AND NOT (customer_id = ANY(%(failed)s))""",
    ],
    ADD: [
        """UPDATE destinations_syncrecord SET sent = wanted, batch_seq = NULL, attempts = 0,
                  error = '', failed_run_id = NULL, updated_at = %(now)s
            WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND run_id = %(run)s
              AND batch_seq = %(seq)s AND NOT (customer_id = ANY(%(failed)s))""",
    ],
    REPLACE_OP: [
        """UPDATE destinations_syncrecord SET sent = wanted, batch_seq = NULL, attempts = 0,
                  error = '', failed_run_id = NULL, updated_at = %(now)s
            WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND run_id = %(run)s
              AND batch_seq = %(seq)s AND NOT (customer_id = ANY(%(failed)s))""",
    ],
}
# Refused rows: tried in this run, retried by the next; the destination's state for them is
# unknown after a refused replace, so they hold nothing there.
_FAIL_SQL = """
UPDATE destinations_syncrecord
   SET batch_seq = NULL, failed_run_id = %(run)s, attempts = attempts + 1,
       error = data.reason, updated_at = %(now)s{replace_reset}
  FROM unnest(%(failed)s::bigint[], %(reasons)s::text[]) AS data(customer_id, reason)
 WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND run_id = %(run)s
   AND destinations_syncrecord.customer_id = data.customer_id
"""
# After the last replace batch, the destination holds exactly the confirmed rows.
_REPLACED_SQL = [
    """DELETE FROM destinations_syncrecord
        WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND wanted IS NULL""",
    """UPDATE destinations_syncrecord SET sent = NULL
        WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s
          AND sent IS NOT NULL AND run_id IS DISTINCT FROM %(run)s""",
]


@dataclass
class Batch:
    op: str
    seq: int
    members: list[Member]
    is_last: bool


def _json(value) -> dict:
    # Django's cursors leave jsonb as text (its JSONField parses it).
    return json.loads(value) if isinstance(value, str) else value or {}


def batch_size(connector: Connector, op: str) -> int:
    """Members a batch of `op` at most: the connector's (its destination may set a smaller
    one; removals may have their own, e.g. Meta's, whose DELETE carries them in the URL),
    or a smaller one set for tests and benchmarks."""
    size = connector.batch_size
    if op == REMOVE:
        size = getattr(connector, "remove_batch_size", None) or size
    override = getattr(django_settings, "MASIVO_SYNC_BATCH_SIZE", None)
    return min(size, override or size)


def _params(run: SyncRun, **more) -> dict:
    return {"workspace": run.workspace_id, "sync": run.sync_id, "run": run.id,
            "now": timezone.now(), **more}  # fmt: skip


def _in_flight(run: SyncRun) -> Batch | None:
    with connection.cursor() as cursor:
        cursor.execute(_IN_FLIGHT_SQL, _params(run))
        rows = cursor.fetchall()
    if not rows:
        return None
    seq, op = rows[0][1], rows[0][2]
    members = [Member(customer_id, _json(identifiers))
               for customer_id, row_seq, _, identifiers in rows if row_seq == seq]  # fmt: skip
    is_last = op == REPLACE_OP and run.remote_state.get("_last_seq") == seq
    return Batch(op=op, seq=seq, members=members, is_last=is_last)


def _take(run: SyncRun, op: str, limit: int) -> Batch | None:
    """Mark the next batch of `op` (committed before it is sent)."""
    seq = run.batch_seq + 1
    column = "sent" if op == REMOVE else "wanted"
    sql = _TAKE_SQL.format(pending=_PENDING[op], identifiers=f"r.{column} AS identifiers")
    with transaction.atomic():
        with connection.cursor() as cursor:
            after = run.remote_state.get("_replace_after", 0)
            cursor.execute(sql, _params(run, limit=limit, seq=seq, op=op, after=after))
            rows = cursor.fetchall()
        if not rows and op != REPLACE_OP:
            return None
        if not rows and run.remote_state.get("_last_seq"):
            # The replace's closing batch was empty and taken before a crash: the same again.
            seq = run.remote_state["_last_seq"]
        more = bool(rows and rows[0][2])
        if op == REPLACE_OP and not more:
            run.remote_state["_last_seq"] = seq
        run.batch_seq = seq
        job_heartbeat(run, batch_seq=seq, remote_state=run.remote_state)
    members = [Member(customer_id, _json(identifiers)) for customer_id, identifiers, _ in rows]
    return Batch(op=op, seq=seq, members=members, is_last=op == REPLACE_OP and not more)


def _send(run: SyncRun, sync: AudienceSync, connector: Connector, batch: Batch):
    session = Session(
        session_id=run.session_id, batch_seq=batch.seq,
        estimated_total=max(run.to_add + run.to_remove, len(batch.members)),
        state=run.remote_state,
    )  # fmt: skip
    request_slot(sync.destination, connector)
    remote = sync.remote_audience_id
    if batch.op == REMOVE:
        result = connector.members_remove(remote, batch.members, session=session)
    elif batch.op == ADD:
        result = connector.members_add(remote, batch.members, session=session)
    else:
        result = connector.replace_batch(remote, batch.members, session=session,
                                         last=batch.is_last)  # fmt: skip
    run.remote_state = session.state
    return result


def _confirm(run: SyncRun, batch: Batch, failed: dict[int, str]) -> None:
    """Record a batch's outcome, in one transaction with the run's progress."""
    params = _params(run, seq=batch.seq, failed=list(failed) or [0],
                     reasons=list(failed.values()) or [""])  # fmt: skip
    with transaction.atomic():
        with connection.cursor() as cursor:
            if failed:
                reset = ", sent = NULL" if batch.op == REPLACE_OP else ""
                cursor.execute(_FAIL_SQL.format(replace_reset=reset), params)
            for sql in _CONFIRM_SQL[batch.op]:
                cursor.execute(sql, params)
            if batch.op == REPLACE_OP and batch.is_last:
                for sql in _REPLACED_SQL:
                    cursor.execute(sql, params)
        done = len(batch.members) - len(failed)
        samples = run.error_samples
        for customer_id, reason in list(failed.items())[: MAX_ERROR_SAMPLES - len(samples)]:
            samples.append({"customer_id": customer_id, "op": batch.op, "error": reason[:300]})
        progress = {"failed": F("failed") + len(failed), "error_samples": samples,
                    "remote_state": run.remote_state, "attempts": 0}  # fmt: skip
        if batch.op == REMOVE:
            progress["removed"] = F("removed") + done
        else:
            progress["added"] = F("added") + done
        if batch.op == REPLACE_OP and batch.is_last:
            progress["phase"] = SyncRun.Phase.FINISH
        if batch.op == REPLACE_OP and batch.members:
            # The next replace batch starts after this one (a keyset, not a skip of the rows
            # already confirmed, which grew with every batch).
            run.remote_state["_replace_after"] = max(m.customer_id for m in batch.members)
            progress["remote_state"] = run.remote_state
        job_heartbeat(run, **progress)
    run.refresh_from_db()


# The run --------------------------------------------------------------------------------------


def _backoff(run: SyncRun, retry_after: float | None) -> timedelta:
    base = min(SyncRun.FIRST_BACKOFF * 2 ** max(run.attempts - 1, 0), SyncRun.MAX_BACKOFF)
    jittered = base.total_seconds() * random.uniform(0.5, 1.0)  # noqa: S311 (jitter)
    return timedelta(seconds=max(jittered, retry_after or 0))


def _retry_later(run: SyncRun, reason: str, retry_after: float | None) -> None:
    if run.attempts >= SyncRun.MAX_ATTEMPTS:
        SyncRun.objects.filter(id=run.id).update(
            status=SyncRun.Status.DEAD, finished_at=timezone.now(),
            error=f"gave up after {run.attempts} attempts: {reason}"[:2000],
        )  # fmt: skip
        return
    SyncRun.objects.filter(id=run.id).update(
        status=SyncRun.Status.QUEUED, retry_at=timezone.now() + _backoff(run, retry_after),
        error=reason[:2000],
    )  # fmt: skip


def _stop_reason(sync: AudienceSync) -> str | None:
    sync.refresh_from_db(fields=["status"])
    sync.destination.refresh_from_db(fields=["status"])
    if sync.status != AudienceSync.Status.ACTIVE:
        return "the sync was paused"
    if sync.destination.status != Destination.Status.ACTIVE:
        return "the destination is disabled"
    return None


def _cancel(run: SyncRun, reason: str) -> None:
    """Stop between batches: nothing is in flight, the record is true, the next run goes on."""
    SyncRun.objects.filter(id=run.id).update(
        status=SyncRun.Status.CANCELED, finished_at=timezone.now(), error=reason
    )


def _phases(run: SyncRun, sync: AudienceSync, connector: Connector) -> None:
    replaces = run.mode == AudienceSync.Mode.FULL and connector.has(REPLACE)
    if run.phase == SyncRun.Phase.PLAN:
        _plan(run, sync, type(connector), replaces)
    before = copy.deepcopy(run.remote_state)
    session = Session(run.session_id, run.batch_seq, run.to_add + run.to_remove, run.remote_state)
    connector.run_begin(sync.remote_audience_id, mode=run.mode, session=session)
    if session.state != before:
        run.remote_state = session.state
        job_heartbeat(run, remote_state=run.remote_state)
    batch = _in_flight(run)
    order = {SyncRun.Phase.REPLACE: [REPLACE_OP], SyncRun.Phase.REMOVE: [REMOVE, ADD],
             SyncRun.Phase.ADD: [ADD]}.get(run.phase, [])  # fmt: skip
    for op in order:
        if op == ADD and run.phase == SyncRun.Phase.REMOVE:
            job_heartbeat(run, phase=SyncRun.Phase.ADD)
            run.phase = SyncRun.Phase.ADD
        while True:
            if batch is None:  # else: the batch in flight before a crash, sent again first
                stop = _stop_reason(sync)
                if stop:
                    _cancel(run, stop)
                    return
                batch = _take(run, op, batch_size(connector, op))
                if batch is None:
                    break
            try:
                failed = dict(_send(run, sync, connector, batch).failed)
            except BatchRejected as error:
                failed = {member.customer_id: str(error) for member in batch.members}
            _confirm(run, batch, failed)
            last_of_replace = batch.op == REPLACE_OP and batch.is_last
            batch = None
            if last_of_replace:
                break
    if run.phase != SyncRun.Phase.FINISH:
        job_heartbeat(run, phase=SyncRun.Phase.FINISH)
        run.phase = SyncRun.Phase.FINISH
    session = Session(run.session_id, run.batch_seq, run.to_add + run.to_remove, run.remote_state)
    connector.run_finish(sync.remote_audience_id, session=session)
    _finish(run, sync)


def _finish(run: SyncRun, sync: AudienceSync) -> None:
    now = timezone.now()
    with transaction.atomic():
        held = sync_remote_size(sync)
        AudienceSync.objects.filter(id=sync.id).update(remote_size=held, last_run_at=now)
        job_succeed(run, phase=SyncRun.Phase.DONE)


def sync_remote_size(sync: AudienceSync) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM destinations_syncrecord WHERE workspace_id = %s"
            " AND sync_id = %s AND sent IS NOT NULL",
            [sync.workspace_id, sync.id],
        )
        return cursor.fetchone()[0]


def _restart(run: SyncRun) -> None:
    """The run's remote state is gone: plan again, and forget this run's batch marks."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE destinations_syncrecord SET batch_seq = NULL, run_id = NULL"
                " WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND run_id = %(run)s",
                _params(run),
            )
        run.phase = SyncRun.Phase.PLAN
        job_heartbeat(run, phase=SyncRun.Phase.PLAN)


def sync_runs_until_idle(*, stall_seconds: float | None = None) -> dict[str, int]:
    """Every run that is due, or whose worker went silent (for `stall_seconds`, by default
    the job's STALL_AFTER), until none is left (cross-tenant; for `manage.py
    sync_destinations`). Returns the runs' end states counted."""
    from collections import Counter

    from masivo.tenancy.context import all_workspaces, workspace_scope

    stall = SyncRun.STALL_AFTER if stall_seconds is None else timedelta(seconds=stall_seconds)
    ended: Counter = Counter()
    while True:
        now = timezone.now()
        silent = Q(status="running", heartbeat_at__lt=now - stall)
        with all_workspaces(reason="sync_destinations: find runs to do"):
            # A silent run is claimable at once: its heartbeat is forgotten.
            SyncRun.objects.filter(silent).update(heartbeat_at=None)
            due = list(
                SyncRun.objects.filter(
                    Q(status="queued", retry_at__isnull=True)
                    | Q(status="queued", retry_at__lte=now)
                    | Q(status="running", heartbeat_at__isnull=True)
                ).order_by("id").values_list("workspace_id", "id")
            )  # fmt: skip
        if not due:
            return dict(ended)
        moved = False
        for workspace_id, run_id in due:
            with workspace_scope(workspace_id):
                run = sync_run_execute(run_id=run_id)
            if run is None:
                continue
            ended[run.status] += 1
            moved = moved or run.status != "running"
            if run.status == "queued" and run.retry_at and run.retry_at > timezone.now():
                return dict(ended)  # backing off: a later call goes on
        if not moved:
            return dict(ended)  # held by live workers


def sync_run_execute(*, run_id: int, now: datetime | None = None) -> SyncRun:
    """Claim the run and take it as far as it goes (the task's body). Idempotent: a finished
    run, or one another worker holds, is left alone."""
    run = SyncRun.objects.filter(id=run_id).first()
    if run is None or not job_claim(run, now=now):
        return run
    sync = AudienceSync.objects.select_related("destination", "audience").get(id=run.sync_id)
    stop = _stop_reason(sync)
    if stop:
        _cancel(run, stop)
        return run
    connector = connector_for(sync.destination)
    for _ in range(MAX_RERUNS + 1):
        try:
            _phases(run, sync, connector)
        except RerunNeeded as error:
            logger.warning("sync run %s starts over: %s", run.id, error)
            _restart(run)
            continue
        except StillRunning as error:
            if timezone.now() - run.started_at > STILL_RUNNING_FOR_AT_MOST:
                job_fail(run, f"the platform was still processing after "
                              f"{STILL_RUNNING_FOR_AT_MOST}: {error}")  # fmt: skip
            else:
                SyncRun.objects.filter(id=run.id).update(
                    status=SyncRun.Status.QUEUED, attempts=0, error=str(error)[:2000],
                    retry_at=timezone.now() + timedelta(seconds=error.retry_after or 60),
                )  # fmt: skip
        except RetryLater as error:
            _retry_later(run, f"{type(error).__name__}: {error}", error.retry_after)
        except TRANSIENT_ERRORS as error:
            _retry_later(run, f"{type(error).__name__}: {error}", None)
        except DestinationBroken as error:
            from destinations.services import destination_status_record

            destination_status_record(destination=sync.destination, active=False,
                                      reason=str(error))  # fmt: skip
            job_fail(run, f"the destination was disabled: {error}")
        except ConnectorError as error:
            job_fail(run, f"{type(error).__name__}: {error}")
        except Exception as error:
            logger.exception("sync run %s failed", run.id)
            job_fail(run, f"{type(error).__name__}: {error}")
        break
    else:
        job_fail(run, f"the destination lost the run's state {MAX_RERUNS + 1} times")
    run.refresh_from_db()
    return run
