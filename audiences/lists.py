"""Uploaded lists: a CSV of external ids, emails or phones, matched to customers (optionally
creating the missing ones) and added to a list audience in batches, with progress and a report
of the rows that added no one. List membership is static: never re-evaluated."""

from __future__ import annotations

import csv
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from audiences.membership import cause_upload, membership_apply
from audiences.models import Audience, ListUpload, ListUploadChunk, ListUploadProblem
from masivo.jobs import PermanentJobError, job_run, job_succeed, jobs_to_wake
from masivo.tenancy.errors import Conflict, InvalidInput
from masivo.tenancy.wakeups import task_wake, task_wake_on_commit
from profiles import normalize
from profiles.files import CHUNK_BYTES, ChunkStream, csv_lines, store_chunks, text_reader
from profiles.models import Customer

BATCH = 1000
MAX_PROBLEMS_KEPT = 100_000
CREATABLE = (ListUpload.Identifier.EXTERNAL_ID, ListUpload.Identifier.EMAIL)
LIST_UPLOAD_TASK = "audiences.process_list_upload"  # audiences.tasks.process_list_upload


def _clean(identifier: str, value: str) -> str:
    if identifier == ListUpload.Identifier.EMAIL:
        return normalize.clean_email(value)
    if identifier == ListUpload.Identifier.PHONE:
        return normalize.clean_phone(value)
    text = normalize.clean_text(value, field="external_id", max_length=255)
    if not text:
        raise InvalidInput("empty")
    return text


@transaction.atomic
def list_upload_create(
    *, audience: Audience, upload, filename: str, identifier: str, create_missing: bool, actor: str
) -> ListUpload:
    if audience.kind != Audience.Kind.LIST:
        raise Conflict("only uploaded-list audiences take a file of members")
    if identifier not in ListUpload.Identifier.values:
        raise InvalidInput("external_id, email or phone", field="identifier")
    if create_missing and identifier not in CREATABLE:
        raise InvalidInput("missing customers can be created from external ids or emails only",
                           field="create_missing")  # fmt: skip
    first = upload.read(CHUNK_BYTES)
    if not first.strip():
        raise InvalidInput("the file is empty", field="file")
    try:
        first.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if error.start < len(first) - 4:
            raise InvalidInput("the file is not UTF-8 text", field="file") from error
    list_upload = ListUpload.objects.create(
        workspace=audience.workspace,
        audience=audience,
        filename=normalize.strip_nul(filename)[:255],
        identifier=identifier,
        create_missing=create_missing,
        created_by=actor,
    )
    list_upload.size_bytes = store_chunks(
        first,
        upload,
        lambda sequence, data: ListUploadChunk.objects.create(
            workspace=audience.workspace, upload=list_upload, sequence=sequence, data=data
        ),
    )
    list_upload.save(update_fields=["size_bytes"])
    task_wake_on_commit(
        LIST_UPLOAD_TASK, workspace_id=audience.workspace_id, upload_id=list_upload.id
    )
    return list_upload


def _values(list_upload: ListUpload, stream: ChunkStream):
    """(row number in the file, value without NULs) for each data row. A first row that names
    the identifier is a header (and picks the column); otherwise the first column is used. NULs
    go here, as in every way in, so that no report row carries one to the database."""
    column = 0
    for number, row in enumerate(csv.reader(text_reader(stream)), start=1):
        if number == 1:
            names = [cell.strip().lower() for cell in row]
            if list_upload.identifier in names:
                column = names.index(list_upload.identifier)
                continue
        if not any(cell.strip() for cell in row):
            continue
        yield number, normalize.strip_nul(row[column]) if column < len(row) else ""


def _apply(
    list_upload: ListUpload, batch: list[tuple[int, str]], now
) -> list[tuple[int, str, str]]:
    identifier = list_upload.identifier
    problems, cleaned, repeats = [], {}, []
    for number, raw in batch:
        try:
            value = _clean(identifier, raw)
        except InvalidInput as error:
            problems.append((number, raw, f"invalid {identifier}: {error.message}"))
            continue
        if value in cleaned:
            repeats.append((number, value))  # counted below like its first row, never lost
        cleaned.setdefault(value, number)
    # A phone can belong to an anonymous customer (no external id or email), never a member.
    found, anonymous = {}, set()
    for value, customer_id, is_anonymous in Customer.objects.filter(
        **{f"{identifier}__in": list(cleaned)}
    ).values_list(identifier, "id", "is_anonymous"):
        if is_anonymous:
            anonymous.add(value)
        else:
            found[value] = customer_id
    anonymous -= set(found)
    for value in anonymous:
        problems.append((cleaned[value], value, f"no customer with this {identifier} is known: "
                         "anonymous customers are never members"))  # fmt: skip
    missing = [value for value in cleaned if value not in found and value not in anonymous]
    if missing and list_upload.create_missing:
        Customer.objects.bulk_create(
            [Customer(workspace_id=list_upload.workspace_id, **{identifier: value},
                      created_at=now, updated_at=now) for value in missing],
            ignore_conflicts=True,
        )  # fmt: skip
        created = dict(
            Customer.objects.filter(**{f"{identifier}__in": missing}).values_list(identifier, "id")
        )
        list_upload.rows_created += len(created)
        found |= created
    for value in missing:
        if value not in found:
            problems.append((cleaned[value], value, f"no customer with this {identifier}"))
    # A repeat of a value in this batch: 'already' if it names a member, else the same problem.
    reasons = {value: reason for _, value, reason in problems}
    for number, value in repeats:
        if value in found:
            list_upload.rows_already += 1
        else:
            problems.append((number, value, reasons[value]))
    ids = sorted(set(found.values()))
    entered, _ = membership_apply(
        workspace_id=list_upload.workspace_id,
        audience_id=list_upload.audience_id,
        entering=ids,
        leaving=[],
        cause=cause_upload(list_upload.id, list_upload.created_by),
        now=now,
    )
    list_upload.rows_added += entered
    list_upload.rows_already += len(ids) - entered
    return problems


def list_upload_run(*, list_upload: ListUpload) -> ListUpload:
    """Process the file as a job (masivo.jobs): each batch commits with its counters, its
    checkpoint (`next_row`) and a heartbeat, so a worker killed midway is resumed by the sweep
    from the last batch. Idempotent: re-adding a member is counted as 'already', never logged
    twice; a finished upload does nothing."""
    return job_run(list_upload, _process)


def _process(list_upload: ListUpload) -> None:
    batch = []
    stream = ChunkStream(
        ListUploadChunk.objects.filter(upload=list_upload)
        .order_by("sequence")
        .values_list("data", flat=True)
        .iterator(chunk_size=4)
    )

    def flush(last_number: int):
        now = timezone.now()
        with transaction.atomic():
            current = ListUpload.objects.select_for_update().get(id=list_upload.id)
            problems = _apply(current, batch, now)
            current.rows_unmatched += sum(1 for p in problems if p[2].startswith("no customer"))
            current.rows_invalid += sum(1 for p in problems if p[2].startswith("invalid"))
            room = MAX_PROBLEMS_KEPT - ListUploadProblem.objects.filter(upload=current).count()
            ListUploadProblem.objects.bulk_create(
                ListUploadProblem(workspace_id=current.workspace_id, upload=current,
                                  row_number=n, value=str(v)[:255], reason=r[:200])
                for n, v, r in problems[: max(room, 0)]
            )  # fmt: skip
            current.bytes_done = min(stream.bytes_read, current.size_bytes)
            current.next_row = max(current.next_row, last_number)
            current.heartbeat_at = now
            current.save()
        batch.clear()

    number = list_upload.next_row
    try:
        for number, raw in _values(list_upload, stream):
            if number <= list_upload.next_row:
                continue  # done before a crash: resume after the checkpoint
            batch.append((number, raw))
            if len(batch) >= BATCH:
                flush(number)
        flush(number)
    except UnicodeDecodeError as error:
        raise PermanentJobError("the file is not UTF-8 text") from error
    except csv.Error as error:
        raise PermanentJobError(str(error)) from error
    job_succeed(list_upload, bytes_done=list_upload.size_bytes)
    ListUploadChunk.objects.filter(upload=list_upload).delete()


def list_upload_problems_csv(*, list_upload: ListUpload):
    """The rows that added no one, as streamed CSV lines."""
    problems = (
        ListUploadProblem.objects.filter(upload_id=list_upload.id)
        .order_by("row_number", "id")
        .values_list("row_number", "value", "reason")
    )
    return csv_lines(["row", "value", "reason"], problems, workspace_id=list_upload.workspace_id)


def list_uploads_resume_stalled(*, now: datetime | None = None) -> int:
    """Beat, across workspaces: wake again uploads never picked up, due for a retry, or whose
    worker went silent (masivo.jobs.jobs_to_wake); each resumes after its checkpoint. Returns
    how many were woken."""
    stalled = jobs_to_wake(ListUpload, reason="beat: find list uploads to wake again", now=now)
    for workspace_id, upload_id in stalled:
        task_wake(LIST_UPLOAD_TASK, workspace_id=workspace_id, upload_id=upload_id)
    return len(stalled)
