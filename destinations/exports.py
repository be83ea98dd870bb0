"""Event exports: one UTC day of a workspace's events, written to an S3 destination as files.

    {prefix}events/dt=YYYY-MM-DD/part-{n:05d}.{csv|jsonl}.gz   at most 50,000 events each
    {prefix}events/dt=YYYY-MM-DD/manifest.json                 every part, its rows and SHA-256

Events go in id order, read in keyset pages (never the whole day in memory) and always within
the day's `occurred_at` range, so only that month's partition of `profiles_event` is read. A
part is gzipped into a spooled temporary file and uploaded; then its last event id becomes the
export's `checkpoint`, committed with the heartbeat. An export resumed after a crash starts
after the checkpoint with the next part number: a part uploaded but not yet recorded is
written again under the same key with the same bytes (gzip's mtime is fixed).

Customers whose vendor decision for the destination's key denies it (`vendor_allows_sql`)
are left out, with their events; the exports are the workspace's own data, so no consent
purpose applies (as for the connector's audience exports). See docs/destinations/s3.md.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tempfile
from datetime import UTC, date, datetime, time, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from destinations.connectors.base import ConnectorError, DestinationBroken, RetryLater
from destinations.connectors.s3 import S3Connector
from destinations.models import Destination, DestinationKind, EventExport
from destinations.services import destination_status_record
from masivo.jobs import (
    JobStatus,
    PermanentJobError,
    job_heartbeat,
    job_retry_later,
    job_run,
    job_succeed,
    jobs_to_wake,
)
from masivo.tenancy.actors import SYSTEM, Actor
from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.errors import InvalidInput, NotAllowed
from masivo.tenancy.roles import Permission
from masivo.tenancy.wakeups import task_wake_on_commit
from profiles.consent import vendor_allows_sql
from profiles.models import ProfileSettings

EXPORT_TASK = "destinations.event_export_run"
DAILY_REASON = "beat: find the S3 destinations that export events daily"
WAKE_REASON = "beat: wake event exports lost or due for retry"
PART_ROWS = 50_000
PAGE_ROWS = 5_000
SPOOL_BYTES = 16 * 1024 * 1024  # a part bigger than this once gzipped goes to disk
MAX_EVENT_NAMES = 200
COLUMNS = ["id", "name", "customer_id", "external_id", "occurred_at", "received_at",
           "properties", "context"]  # fmt: skip

_PAGE_SQL = """
SELECT e.id, e.name, e.customer_id, c.external_id, e.occurred_at, e.received_at,
       e.properties::text, e.context::text
  FROM profiles_event e
  LEFT JOIN profiles_customer c ON c.id = e.customer_id AND c.workspace_id = e.workspace_id
 WHERE e.workspace_id = %(workspace)s
   AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
   AND e.id > %(after)s{names}
   AND {vendor}
 ORDER BY e.id
 LIMIT %(limit)s
"""


# Scheduling -----------------------------------------------------------------------------------


def event_export_schedule(
    *,
    destination: Destination,
    day: date,
    event_names: list[str] | None = None,
    again: bool = False,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> EventExport:
    """The export of `day` (UTC) to `destination`, queued once. Asking again returns the same
    export; with `again`, a finished one is reset and written again (late events, erasures),
    its parts overwritten and any part no longer needed deleted. `event_names` defaults to
    the destination's `config.export_event_names` (empty: every event)."""
    if not actor.can(Permission.MANAGE_DESTINATIONS):
        raise NotAllowed("your role may not export events")
    if destination.kind != DestinationKind.S3:
        raise InvalidInput("event exports go to Amazon S3 destinations", field="destination")
    today = (now or timezone.now()).astimezone(UTC).date()
    if not isinstance(day, date) or day >= today:
        raise InvalidInput("a day before today (UTC): its events are complete", field="day")
    names = _clean_names(
        destination.config.get("export_event_names", []) if event_names is None else event_names
    )
    with transaction.atomic():
        export = _existing(destination, day)
        if export is None:
            try:
                with transaction.atomic():
                    export = EventExport.objects.create(
                        workspace_id=destination.workspace_id, destination=destination, day=day,
                        event_names=names, created_by=actor.label,
                    )  # fmt: skip
            except IntegrityError:
                return _existing(destination, day)
        elif again and export.is_finished:
            _reset(export, names, actor)
        else:
            return export
        task_wake_on_commit(EXPORT_TASK, workspace_id=destination.workspace_id, export_id=export.id)
    return export


def _existing(destination: Destination, day: date) -> EventExport | None:
    return EventExport.objects.select_for_update().filter(destination=destination, day=day).first()


def _reset(export: EventExport, names: list[str], actor: Actor) -> None:
    fields = {
        "status": JobStatus.QUEUED, "attempts": 0, "error": "", "started_at": None,
        "heartbeat_at": None, "retry_at": None, "finished_at": None, "rows": 0,
        "objects_written": 0, "checkpoint": 0, "parts": [], "manifest_key": "",
        "event_names": names, "created_by": actor.label, "created_at": timezone.now(),
    }  # fmt: skip
    EventExport.objects.filter(id=export.id).update(**fields)
    for name, value in fields.items():
        setattr(export, name, value)


def _clean_names(names) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise InvalidInput("a list of event names", field="event_names")
    if len(names) > MAX_EVENT_NAMES:
        raise InvalidInput(f"at most {MAX_EVENT_NAMES} names", field="event_names")
    return sorted(set(names))


def event_exports_daily(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """Beat (01:00 UTC): yesterday's export for every active S3 destination with
    `config.export_events`. Cross-tenant to find them; each is scheduled in its workspace.
    Returns (workspace_id, export_id) of the exports asked for."""
    now = now or timezone.now()
    day = now.astimezone(UTC).date() - timedelta(days=1)
    with all_workspaces(reason=DAILY_REASON):
        targets = list(
            Destination.objects.filter(
                kind=DestinationKind.S3, status=Destination.Status.ACTIVE,
                config__export_events=True,
            ).order_by("id").values_list("workspace_id", "id")
        )  # fmt: skip
    scheduled = []
    for workspace_id, destination_id in targets:
        with workspace_scope(workspace_id):
            destination = Destination.objects.get(id=destination_id)
            export = event_export_schedule(destination=destination, day=day, now=now)
        scheduled.append((workspace_id, export.id))
    return scheduled


def event_exports_list(*, destination: Destination):
    """The destination's exports, newest first."""
    return EventExport.objects.filter(destination=destination).order_by("-id")


def event_exports_to_wake(*, now: datetime | None = None) -> list[tuple]:
    return jobs_to_wake(EventExport, reason=WAKE_REASON, now=now)


# Running --------------------------------------------------------------------------------------


def event_export_execute(*, export_id: int) -> EventExport | None:
    """Claim the export and write it (or the rest of it). A second worker does nothing."""
    export = EventExport.objects.filter(id=export_id).select_related("destination").first()
    if export is None:
        return None
    return job_run(export, _export)


def _export(export: EventExport) -> None:
    destination = export.destination
    if not destination.is_active:
        raise PermanentJobError(f"the destination is disabled: {destination.disabled_reason}")
    try:
        _write_day(export, S3Connector(destination))
    except RetryLater as error:
        job_retry_later(export, str(error))
    except DestinationBroken as error:
        destination_status_record(destination=destination, active=False, reason=str(error))
        raise PermanentJobError(str(error)) from None
    except ConnectorError as error:
        raise PermanentJobError(str(error)) from None


def day_folder(connector: S3Connector, day: date) -> str:
    return f"{connector.prefix}events/dt={day.isoformat()}/"


def _write_day(export: EventExport, connector: S3Connector) -> None:
    folder = day_folder(connector, export.day)
    query = _day_query(export)
    parts = list(export.parts)
    after = export.checkpoint
    while True:
        key = f"{folder}part-{len(parts) + 1:05d}.{connector.file_format}.gz"
        part = _write_part(export, connector, query, key=key, after=after)
        if part is None:
            break
        parts.append(part)
        after = part["last_id"]
        job_heartbeat(export, checkpoint=after, objects_written=len(parts), parts=parts,
                      rows=sum(p["rows"] for p in parts))  # fmt: skip
        if part["rows"] < PART_ROWS:
            break
    _delete_stale_parts(connector, folder, {part["key"] for part in parts})
    manifest_key = f"{folder}manifest.json"
    connector.put(manifest_key, _manifest(export, connector, parts),
                  content_type="application/json")  # fmt: skip
    job_succeed(export, checkpoint=after, objects_written=len(parts), parts=parts,
                rows=sum(p["rows"] for p in parts), manifest_key=manifest_key)  # fmt: skip


def _day_query(export: EventExport) -> tuple[str, dict]:
    """The page statement and its parameters (but `after` and `limit`, set per page)."""
    settings = ProfileSettings.objects.filter(workspace_id=export.workspace_id).first()
    required = settings.vendor_consent_required if settings else False
    start = datetime.combine(export.day, time.min, tzinfo=UTC)
    params = {"workspace": export.workspace_id, "start": start, "end": start + timedelta(days=1),
              "vendor_key": export.destination.key, "names": export.event_names}  # fmt: skip

    def bind(value) -> str:
        name = f"p{len(params)}"
        params[name] = value
        return f"%({name})s"

    vendor = vendor_allows_sql("c.consent_vendors", "%(vendor_key)s", required=required,
                               bind=bind)  # fmt: skip
    names = " AND e.name = ANY(%(names)s)" if export.event_names else ""
    return _PAGE_SQL.format(names=names, vendor=vendor), params


def _write_part(export, connector, query, *, key: str, after: int) -> dict | None:
    """The next part after event `after`, uploaded under `key`; None when no event is left."""
    sql, params = query
    rows, first_id, last_id = 0, None, after
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        with gzip.GzipFile(filename="", fileobj=spool, mode="wb", mtime=0) as archive:
            text = io.TextIOWrapper(archive, encoding="utf-8", newline="")
            write = _row_writer(text, connector.file_format)
            while rows < PART_ROWS:
                with connection.cursor() as cursor:
                    cursor.execute(sql, {**params, "after": last_id,
                                         "limit": min(PAGE_ROWS, PART_ROWS - rows)})  # fmt: skip
                    page = cursor.fetchall()
                if not page:
                    break
                for row in page:
                    write(row)
                rows += len(page)
                first_id = first_id or page[0][0]
                last_id = page[-1][0]
                job_heartbeat(export)
            text.flush()
            text.detach()
        if rows == 0:
            return None
        size, digest = _size_and_sha256(spool)
        spool.seek(0)
        connector.put(key, spool, content_type="application/gzip")
    return {"key": key, "rows": rows, "bytes": size, "sha256": digest,
            "first_id": first_id, "last_id": last_id}  # fmt: skip


def _row_writer(text: io.TextIOWrapper, file_format: str):
    """Properties and context are written as Postgres prints them (jsonb text), never parsed:
    a CSV cell holds that text, a JSON line embeds it as its last two values."""
    if file_format == "csv":
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        return lambda row: writer.writerow(_scalars(row) + list(row[6:]))

    def write_line(row) -> None:
        scalars = _json(dict(zip(COLUMNS[:6], _scalars(row), strict=True)))
        text.write(f'{scalars[:-1]},"properties":{row[6]},"context":{row[7]}}}\n')

    return write_line


def _scalars(row) -> list:
    event_id, name, customer_id, external_id, occurred_at, received_at = row[:6]
    return [event_id, name, customer_id, external_id, _timestamp(occurred_at),
            _timestamp(received_at)]  # fmt: skip


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _size_and_sha256(spool) -> tuple[int, str]:
    spool.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := spool.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _delete_stale_parts(connector: S3Connector, folder: str, keep: set[str]) -> None:
    """Parts a previous export of the day wrote beyond this one's last (fewer events now)."""
    stale = [key for key in connector.keys_under(f"{folder}part-") if key not in keep]
    for key in stale:
        connector.delete(key)


def _manifest(export: EventExport, connector: S3Connector, parts: list[dict]) -> bytes:
    document = {
        "version": 1,
        "day": export.day.isoformat(),
        "destination": export.destination.key,
        "event_names": export.event_names,
        "format": connector.file_format,
        "gzip": True,
        "columns": COLUMNS,
        "rows": sum(part["rows"] for part in parts),
        "objects": parts,
        "exported_at": timezone.now().astimezone(UTC).isoformat(timespec="seconds"),
    }
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"
