"""Bulk import of customers from CSV: stored in the database in chunks, upserted in batches.

The upload is streamed into `CustomerImportChunk` rows (never held whole in memory), so any
worker can process it. Processing reads the chunks back as one stream, validates each row with
the same rules as the API, and upserts batches of rows in one transaction each, together with the
import's counters and `next_row` checkpoint: a crashed import resumes where it stopped, and
re-running a file gives the same profiles (idempotent upsert by external id or email).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from masivo.jobs import PermanentJobError, job_heartbeat, job_run, job_succeed, jobs_to_wake
from masivo.tenancy.errors import InvalidInput
from masivo.tenancy.models import Workspace
from masivo.tenancy.wakeups import task_wake, task_wake_on_commit
from profiles import normalize
from profiles.changes import ANYTHING, customer_snapshot, keys_between, profile_changes_record
from profiles.consent import clean_consent_changes
from profiles.customer_insert import customer_insert_sql, customer_record_definition
from profiles.fields import PROFILE_FIELDS, clean_profile_fields
from profiles.files import (
    CHUNK_BYTES,
    MAX_CSV_CELL_CHARS,
    ChunkStream,
    csv_lines,
    store_chunks,
    text_reader,
)
from profiles.models import (
    ConsentChange,
    ConsentPurpose,
    Customer,
    CustomerImport,
    CustomerImportChunk,
    CustomerImportError,
    ProfileChange,
)

BATCH_ROWS = 1000
STATS_FIRST_REFRESH = 5000  # rows written; then at every doubling
MAX_COLUMNS = 200
MAX_ERRORS_KEPT = 100_000
IMPORT_TASK = "profiles.import_customers"  # profiles.tasks.import_customers
MAX_IMPORT_BYTES = 2 * 1024 * 1024 * 1024  # the API and the dashboard refuse larger files
MATCH_KEYS = ("external_id", "email")
_TRUE = {"granted", "yes", "y", "true", "1", "opt-in", "opt_in"}
_FALSE = {"denied", "no", "n", "false", "0", "opt-out", "opt_out"}


# -- mapping ---------------------------------------------------------------------------------


def _valid_target(target: str) -> bool:
    if target == "ignore" or target in PROFILE_FIELDS:
        return True
    prefix, _, key = target.partition(".")
    if prefix in ("traits", "tags") and key.strip():
        return True
    return prefix == "consent" and key in ConsentPurpose.values


def _named_target(column: str) -> str | None:
    """The target a column is named like ("Email" → email, "consent.sms"), if any."""
    name = column.strip()
    lowered = name.lower().replace(" ", "_")
    return next((target for target in (lowered, name) if _valid_target(target)), None)


def default_mapping(header: list[str]) -> dict[str, str]:
    """Columns named like a target map to it; others become traits."""
    return {column: _named_target(column) or f"traits.{column.strip()}" for column in header}


def _complete_mapping(mapping: dict, header: list[str]) -> dict[str, str]:
    """A partial mapping: a column it does not name maps to the target it is named like, unless
    the mapping already sends another column there; every other column is stored as `ignore`,
    so the import says what it left out."""
    taken = set(mapping.values())
    completed = {}
    for column in header:
        target = mapping.get(column) or _named_target(column)
        if column not in mapping and (target is None or target in taken):
            target = "ignore"
        completed[column] = target
    return completed


def clean_mapping(mapping, header: list[str]) -> dict[str, str]:
    if mapping is None:
        return default_mapping(header)
    if not isinstance(mapping, dict):
        raise InvalidInput("must be an object of CSV column → target", field="mapping")
    for column, target in mapping.items():
        if column not in header:
            raise InvalidInput(f"the file has no column {column!r}", field="mapping")
        if (
            not isinstance(target, str)
            or normalize.unstorable_reason(target)
            or not _valid_target(target)
        ):
            raise InvalidInput(
                f"{target!r} is not a target: use a profile field, traits.<key>, tags.<key>, "
                "consent.<purpose> or ignore",
                field=f"mapping.{column}",
            )
    return _complete_mapping(mapping, header)


# -- upload ----------------------------------------------------------------------------------


def _read_header(first_bytes: bytes) -> list[str]:
    try:
        text = first_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if error.start < len(first_bytes) - 4:  # not just a character cut at the chunk's end
            raise InvalidInput("the file is not UTF-8 text", field="file") from error
        text = first_bytes[: error.start].decode("utf-8-sig")
    line = next(iter(io.StringIO(text, newline="")), "")
    header = next(csv.reader([line]), [])
    header = [column.strip() for column in header]
    if not header or not any(header):
        raise InvalidInput("the file is empty or has no header row", field="file")
    for number, column in enumerate(header, start=1):
        if "\x00" in column:
            raise InvalidInput(
                f"column {number} of the header row contains a NUL character", field="file"
            )
    if len(header) > MAX_COLUMNS:
        raise InvalidInput(f"more than {MAX_COLUMNS} columns", field="file")
    if len(set(header)) != len(header):
        raise InvalidInput("the header row repeats a column name", field="file")
    return header


@transaction.atomic
def customer_import_create(
    *, workspace: Workspace, upload, filename: str, mapping, match_by: str | None, actor: str
) -> CustomerImport:
    """Store the file in chunks and queue the import; the mapping is checked against the header."""
    first = upload.read(CHUNK_BYTES)
    header = _read_header(first)
    mapping = clean_mapping(mapping, header)
    targets = set(mapping.values())
    match_by = match_by or next((key for key in MATCH_KEYS if key in targets), None)
    if match_by is None:
        raise InvalidInput("no column is mapped to external_id or email", field="mapping")
    if match_by not in MATCH_KEYS:
        raise InvalidInput("match_by is external_id or email", field="match_by")
    if match_by not in targets:
        raise InvalidInput(f"no column is mapped to {match_by}", field="mapping")
    customer_import = CustomerImport.objects.create(
        workspace=workspace,
        filename=normalize.strip_nul(filename)[:255],
        mapping=mapping,
        match_by=match_by,
        created_by=actor,
    )
    size = store_chunks(
        first,
        upload,
        lambda sequence, data: CustomerImportChunk.objects.create(
            workspace=workspace, customer_import=customer_import, sequence=sequence, data=data
        ),
    )
    customer_import.size_bytes = size
    customer_import.save(update_fields=["size_bytes"])
    task_wake_on_commit(IMPORT_TASK, workspace_id=workspace.id, import_id=customer_import.id)
    return customer_import


# -- processing ------------------------------------------------------------------------------


def _rows(customer_import: CustomerImport) -> tuple[ChunkStream, Iterator[tuple[int, dict]]]:
    stream = ChunkStream(
        CustomerImportChunk.objects.filter(customer_import=customer_import)
        .order_by("sequence")
        .values_list("data", flat=True)
        .iterator(chunk_size=4)
    )
    reader = csv.DictReader(text_reader(stream))
    reader.fieldnames = [name.strip() for name in (reader.fieldnames or [])]
    return stream, enumerate(reader, start=1)


@dataclass
class _Row:
    number: int
    key: str
    fields: dict
    traits: dict
    tags: dict
    consent: dict


def _consent_value(value: str, *, field: str) -> str | None:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return "granted"
    if lowered in _FALSE:
        return "denied"
    raise InvalidInput("use granted/denied (or yes/no, true/false, 1/0)", field=field)


def _parse_row(number: int, row: dict, customer_import: CustomerImport) -> _Row:
    if None in row:
        raise InvalidInput("the row has more cells than the header")
    raw_fields, traits, tags, consent = {}, {}, {}, {}
    for column, target in customer_import.mapping.items():
        value = row.get(column)
        if value is None or value.strip() == "" or target == "ignore":
            continue
        if len(value) > MAX_CSV_CELL_CHARS:
            raise InvalidInput(f"longer than {MAX_CSV_CELL_CHARS} characters", field=column)
        value = normalize.strip_nul(value)
        prefix, _, key = target.partition(".")
        if prefix == "traits":
            traits[key] = value
        elif prefix == "tags":
            tags[key] = value.strip()
        elif prefix == "consent":
            consent[key] = _consent_value(value, field=column)
        else:
            raw_fields[target] = value
    try:
        fields = clean_profile_fields(raw_fields)
    except InvalidInput as error:
        column = next((c for c, t in customer_import.mapping.items() if t == error.field), None)
        raise InvalidInput(error.message, field=column or error.field) from error
    tags = normalize.clean_tags(tags)
    clean_consent_changes(consent)
    key = fields.get(customer_import.match_by)
    if not key:
        raise InvalidInput(
            f"no {customer_import.match_by} to match on", field=customer_import.match_by
        )
    return _Row(number, key, fields, traits, tags, consent)


def _apply_batch(customer_import: CustomerImport, rows: list[_Row], now: datetime) -> list:
    """Upsert one batch; returns (row number, field, message) for rows that could not be saved."""
    match_by = customer_import.match_by
    latest: dict[str, _Row] = {}
    for row in rows:  # rows naming the same customer apply in order: later values win
        earlier = latest.get(row.key)
        if earlier:
            row = _Row(
                row.number,
                row.key,
                {**earlier.fields, **row.fields},
                {**earlier.traits, **row.traits},
                {**earlier.tags, **row.tags},
                {**earlier.consent, **row.consent},
            )
        latest[row.key] = row
    existing = {
        getattr(c, match_by): c
        for c in Customer.objects.select_for_update().filter(**{f"{match_by}__in": list(latest)})
    }
    before = {c.id: customer_snapshot(c) for c in existing.values()}
    # The other unique id (email when matching by external id, and the reverse) must not
    # belong to a different customer: such a row fails alone instead of failing the batch.
    other = "email" if match_by == "external_id" else "external_id"
    wanted = {row.fields[other] for row in latest.values() if row.fields.get(other)}
    owners = dict(Customer.objects.filter(**{f"{other}__in": wanted}).values_list(other, match_by))
    failures, to_create, to_update, history = [], [], [], []
    claimed = {}
    for key, row in latest.items():
        value = row.fields.get(other)
        if value:
            if owners.get(value, key) != key or claimed.get(value, key) != key:
                failures.append((row.number, other, f"{value} belongs to another customer"))
                continue
            claimed[value] = key
        customer = existing.get(key)
        if customer is None:
            customer = Customer(
                workspace_id=customer_import.workspace_id, created_at=now, is_anonymous=False
            )
            to_create.append(customer)
        else:
            to_update.append(customer)
        for name, value in row.fields.items():
            setattr(customer, name, value)
        customer.traits = {**customer.traits, **row.traits}
        customer.tags = {**customer.tags, **row.tags}
        for purpose, status in row.consent.items():
            if (customer.consent.get(purpose) or {}).get("status") != status:
                customer.consent[purpose] = {
                    "status": status,
                    "at": now.isoformat(),
                    "source": "import",
                }
                history.append((customer, purpose, status))
        customer.updated_at = now
    _write_customers(customer_import.workspace_id, to_create, to_update, now)
    ConsentChange.objects.bulk_create(
        ConsentChange(
            workspace_id=customer_import.workspace_id,
            customer_id=customer.id,
            purpose=purpose,
            status=status,
            source=f"import:{customer_import.id}",
            changed_at=now,
        )
        for customer, purpose, status in history
    )
    source = "import"
    profile_changes_record(
        workspace_id=customer_import.workspace_id,
        changes=[(c.id, keys_between(before[c.id], customer_snapshot(c))) for c in to_update],
        source=source,
        now=now,
    )
    profile_changes_record(
        workspace_id=customer_import.workspace_id,
        changes=[(c.id, [ANYTHING]) for c in to_create],
        source=source,
        kind=ProfileChange.Kind.CREATED,
        now=now,
    )
    customer_import.rows_created += len(to_create)
    customer_import.rows_updated += len(to_update)
    return failures


# What an import row sets on a customer (as `_row` writes it); the statements are built from it
# and the model, so a new column never breaks them (profiles.customer_insert).
_ROW_COLUMNS = (*PROFILE_FIELDS, "traits", "tags", "consent")
_INSERT_CUSTOMERS, _INSERT_DEFAULTS = customer_insert_sql(
    values={
        "workspace_id": "%(workspace)s",
        "is_anonymous": "false",
        "created_at": "%(now)s",
        "updated_at": "%(now)s",
        **{column: f"v.{column}" for column in _ROW_COLUMNS},
    },
    source=f"jsonb_to_recordset(%(rows)s::jsonb) AS v({customer_record_definition(_ROW_COLUMNS)})",
    suffix="RETURNING id, external_id, email",
)
_UPDATE_CUSTOMERS = f"""
UPDATE profiles_customer c
   SET {", ".join(f"{column} = v.{column}" for column in _ROW_COLUMNS)}, updated_at = %(now)s
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS v(id bigint, {customer_record_definition(_ROW_COLUMNS)})
 WHERE c.workspace_id = %(workspace)s AND c.id = v.id
"""  # noqa: S608 (column names from the model; every value is a parameter)


def _row(customer: Customer) -> dict:
    row = {name: getattr(customer, name) for name in PROFILE_FIELDS}
    row["birth_date"] = customer.birth_date.isoformat() if customer.birth_date else None
    return row | {"traits": customer.traits, "tags": customer.tags, "consent": customer.consent,
                  "id": customer.id}  # fmt: skip


def _write_customers(workspace_id: int, to_create: list, to_update: list, now) -> None:
    """One statement each for the batch's new and changed customers: the rows travel as one
    JSON parameter (Django's bulk_create/bulk_update spent most of an import quoting values)."""
    params = {"workspace": workspace_id, "now": now}
    with connection.cursor() as cursor:
        if to_create:
            rows = json.dumps([_row(c) for c in to_create])
            cursor.execute(_INSERT_CUSTOMERS, _INSERT_DEFAULTS | params | {"rows": rows})
            # Pair the new ids by the batch's match keys (unique within a batch).
            ids = {}
            for new_id, external_id, email in cursor.fetchall():
                ids[("external_id", external_id)] = ids[("email", email)] = new_id
            for customer in to_create:
                key = (
                    ("external_id", customer.external_id)
                    if customer.external_id
                    else ("email", customer.email)
                )
                customer.id = ids[key]
        if to_update:
            cursor.execute(
                _UPDATE_CUSTOMERS, params | {"rows": json.dumps([_row(c) for c in to_update])}
            )


def _record_failures(customer_import: CustomerImport, failures: list) -> None:
    customer_import.rows_failed += len(failures)
    room = (
        MAX_ERRORS_KEPT
        - CustomerImportError.objects.filter(customer_import=customer_import).count()
    )
    CustomerImportError.objects.bulk_create(
        CustomerImportError(
            workspace_id=customer_import.workspace_id,
            customer_import=customer_import,
            row_number=number,
            field=(field or "")[:255],
            message=message[:500],
        )
        for number, field, message in failures[: max(room, 0)]
    )


def customer_import_process(*, customer_import: CustomerImport) -> CustomerImport:
    """The worker's whole job for one import, as a job (masivo.jobs): claim it, run it from its
    checkpoint, and end it succeeded, failed with the reason, or queued again after a transient
    error. Does nothing if it is finished or another worker holds it (safe to wake twice)."""
    return job_run(customer_import, lambda job: customer_import_run(customer_import=job))


def customer_imports_resume_stalled(*, now: datetime | None = None) -> int:
    """Beat, across workspaces: wake again imports never picked up, due for a retry, or whose
    worker went silent (masivo.jobs.jobs_to_wake). Returns how many were woken."""
    stalled = jobs_to_wake(
        CustomerImport, reason="beat: find customer imports to wake again", now=now
    )
    for workspace_id, import_id in stalled:
        task_wake(IMPORT_TASK, workspace_id=workspace_id, import_id=import_id)
    return len(stalled)


def customer_import_run(*, customer_import: CustomerImport, batch_rows: int = BATCH_ROWS) -> None:
    """The job's work: process the import from its checkpoint to the end (run it through
    `customer_import_process`, which claims it). Each batch commits with the counters, the
    checkpoint and a heartbeat; a file that cannot be read on, or a row that breaks a
    constraint, raises `PermanentJobError` with the recorded reason."""
    batch, failures = [], []
    refresh_stats_at = [STATS_FIRST_REFRESH]

    def flush():
        now = timezone.now()
        with transaction.atomic():
            current = CustomerImport.objects.select_for_update().get(id=customer_import.id)
            problems = failures + _apply_batch(current, batch, now)
            _record_failures(current, problems)
            current.next_row = last_number
            current.bytes_done = min(stream.bytes_read, current.size_bytes)
            job_heartbeat(
                current, next_row=current.next_row, bytes_done=current.bytes_done,
                rows_created=current.rows_created, rows_updated=current.rows_updated,
                rows_failed=current.rows_failed,
            )  # fmt: skip
        customer_import.__dict__.update(current.__dict__)
        batch.clear()
        failures.clear()
        written = current.rows_created + current.rows_updated
        if written >= refresh_stats_at[0]:
            # A big import into a small table leaves the planner's statistics far behind, and
            # its per-batch lookups then walk the workspace (1 s instead of 0.3 ms at 500k
            # rows): refresh them as the table grows.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE profiles_customer")
            refresh_stats_at[0] = written * 2

    last_number = customer_import.next_row
    try:
        stream, rows = _rows(customer_import)
        for number, row in rows:
            if number <= customer_import.next_row:
                continue
            last_number = number
            try:
                batch.append(_parse_row(number, row, customer_import))
            except InvalidInput as error:
                failures.append((number, error.field, error.message))
            if len(batch) + len(failures) >= batch_rows:
                flush()
        flush()
    except (UnicodeDecodeError, csv.Error, IntegrityError) as error:
        # Stop for good, with the reason, rather than fail the same way on every retry.
        if isinstance(error, UnicodeDecodeError):
            reason = "the file is not UTF-8 text"
        elif isinstance(error, IntegrityError):
            reason = f"a row conflicts with another customer ({error.__cause__ or error})"
        else:
            reason = str(error)
        raise PermanentJobError(f"stopped after row {last_number}: {reason}") from error
    with transaction.atomic():
        CustomerImportChunk.objects.filter(customer_import=customer_import).delete()
        job_succeed(customer_import, bytes_done=customer_import.size_bytes)


def customer_import_errors_csv(*, customer_import: CustomerImport) -> Iterator[str]:
    """The per-row error report as streamed CSV lines."""
    errors = (
        CustomerImportError.objects.filter(customer_import_id=customer_import.id)
        .order_by("row_number", "id")
        .values_list("row_number", "field", "message")
    )
    return csv_lines(["row", "column", "error"], errors, workspace_id=customer_import.workspace_id)
