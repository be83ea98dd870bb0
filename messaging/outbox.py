"""The outbox: the only code that creates messages (messaging_message rows).

Every send (the API, campaigns, journeys, test sends) comes here; the contact policy decides
each message once, before its row exists, and the row records the decision. Rows are written
before any provider call; the sender (`messaging.send_due`, woken after commit) claims the
queued ones. The dedupe key (unique per workspace) makes every send at most once: enqueueing
the same key again returns the message that exists.

Messages have three writers, one per stage of their life: this module until the hand-over
(creation, and a campaign's due times, pause, resume and cancel), the sender
(`messaging.sending`: claims, hand-over outcomes, recovery), and delivery feedback
(`messaging.feedback.engagement`: statuses after the hand-over).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from masivo.tenancy.errors import Conflict, InvalidInput
from masivo.tenancy.models import Workspace
from masivo.tenancy.wakeups import task_wake_on_commit
from messaging.models import (
    ContactPolicy,
    Message,
    MessageStatus,
    MessageStatusChange,
    Suppression,
    Template,
    TemplateVersion,
)
from messaging.models.messages import PENDING_STATUSES
from messaging.policy import Decision, contact_decide, policy_decisions_sql
from messaging.policy import vocabulary as v
from messaging.policy.settings import known_zones, workspace_zone
from messaging.policy.sql import JIT_OFF
from profiles import normalize
from profiles.models import Customer

SEND_TASK = "messaging.send_due"
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_EVENT_BYTES = 32_768
_DEDUPE_ROOM = 255 - len("api:")


@dataclass(frozen=True)
class Enqueued:
    """One customer's message; `is_new` is False when the dedupe key already had it (then
    `decision` is the one recorded when it was created)."""

    message: Message
    decision: Decision
    is_new: bool


@dataclass(frozen=True)
class EnqueuedCounts:
    """A set-based enqueue: rows created per decision code, and how many of the source's
    customers already had a message with their dedupe key (left as they were)."""

    by_code: dict[str, int] = field(default_factory=dict)
    already_existing: int = 0

    @property
    def created(self) -> int:
        return sum(self.by_code.values())


def _decision_of(message: Message) -> Decision:
    return Decision(
        code=message.decision_code, text=message.decision, address=message.address,
        due_at=message.due_at,
    )  # fmt: skip


def template_version_for(
    template: Template | None, version: TemplateVersion | None, channel: str
) -> TemplateVersion | None:
    """The version a new message records: the one given, else the template's newest."""
    if template is None:
        return None
    if template.channel != channel:
        raise InvalidInput(
            f"the template is for {template.channel}, not {channel}", field="template_id"
        )
    if template.is_archived:
        raise InvalidInput("the template is archived", field="template_id")
    if version is None:
        version = (
            TemplateVersion.objects.filter(template_id=template.id).order_by("-number").first()
        )
    if version is None or version.template_id != template.id:
        raise InvalidInput("the template has no version to send", field="template_id")
    return version


@transaction.atomic
def message_enqueue(
    *,
    customer: Customer,
    channel: str,
    kind: str,
    dedupe_key: str,
    origin: dict,
    template: Template | None = None,
    template_version: TemplateVersion | None = None,
    render_input: dict | None = None,
    at: datetime.datetime | None = None,
    policy: ContactPolicy | None = None,
    opt_out: bool | None = None,
    campaign=None,
    test_address: str | None = None,
) -> Enqueued:
    """Create one customer's message with the contact policy's decision (status queued,
    deferred or suppressed), or return the one `dedupe_key` already names (race-safe: the
    unique key decides, not a read). Wakes the sender after commit when it is due now.
    `campaign` (a Campaign) links the message to it. `test_address` (a template's test send)
    sends to that address instead of the customer's: only a hard bounce or an invalid address
    on the suppression list stops it."""
    if not dedupe_key or len(dedupe_key) > 255:
        raise InvalidInput("a dedupe key of 1 to 255 characters", field="dedupe_key")
    existing = Message.objects.filter(dedupe_key=dedupe_key).first()
    if existing is not None:
        return Enqueued(message=existing, decision=_decision_of(existing), is_new=False)
    at = at or timezone.now()
    version = template_version_for(template, template_version, channel)
    if test_address is None:
        decision = contact_decide(
            customer=customer, channel=channel, kind=kind, at=at, policy=policy, opt_out=opt_out
        )
    else:
        decision = _test_decision(channel, test_address, at)
    message = Message(
        workspace_id=customer.workspace_id,
        customer=customer,
        channel=channel,
        kind=kind,
        dedupe_key=dedupe_key,
        origin=origin,
        campaign=campaign,
        template=template,
        template_version=version,
        address=decision.address,
        render_input=render_input or {},
        status=decision.status,
        decision=decision.text,
        decision_code=decision.code,
        due_at=decision.due_at,
        created_at=at,
        updated_at=at,
    )
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        existing = Message.objects.filter(dedupe_key=dedupe_key).first()
        if existing is None:
            raise
        return Enqueued(message=existing, decision=_decision_of(existing), is_new=False)
    MessageStatusChange.objects.create(
        workspace_id=customer.workspace_id,
        message=message,
        status=message.status,
        detail=decision.text,
        at=at,
    )
    if message.status == MessageStatus.QUEUED:
        task_wake_on_commit(SEND_TASK, workspace_id=customer.workspace_id)
    return Enqueued(message=message, decision=decision, is_new=True)


def _test_decision(channel: str, address: str, at) -> Decision:
    reason = (
        Suppression.objects.filter(channel=channel, address=address)
        .values_list("reason", flat=True)
        .first()
    )
    if reason in v.BLOCKS_EVERY_KIND:
        return Decision(
            code=v.SUPPRESSED, text=v.SUPPRESSION_TEXTS[reason], address=address, due_at=at
        )
    return Decision(code=v.OK, text=f"test send to {address}", address=address, due_at=at)


def _json_sql(value, bind) -> str:
    return f"{bind(json.dumps(value))}::jsonb"


def _insert_columns(model, explicit: dict[str, str], bind) -> tuple[list[str], list[str]]:
    """Every column of `model` but the id: `explicit` SQL where given, else the field's
    default (so a column added to the model later still gets its value)."""
    columns, values = [], []
    for model_field in model._meta.concrete_fields:
        if model_field.primary_key:
            continue
        columns.append(model_field.column)
        if model_field.column in explicit:
            values.append(explicit[model_field.column])
        elif model_field.null and not model_field.has_default():
            values.append("NULL")
        else:
            default = model_field.get_default()  # "" for text without a default, as the ORM
            if default is None:
                raise ValueError(f"{model.__name__}.{model_field.name} needs a value")
            if isinstance(model_field, models.JSONField):
                values.append(_json_sql(default, bind))
            else:
                values.append(bind(model_field.get_db_prep_save(default, connection)))
    return columns, values


def messages_enqueue_from_sql(
    *,
    workspace: Workspace,
    channel: str,
    kind: str,
    source_sql: str,
    source_params: dict,
    dedupe_key_prefix: str,
    origin: dict,
    template: Template | None = None,
    template_version: TemplateVersion | None = None,
    render_input: dict | None = None,
    at: datetime.datetime | None = None,
    campaign=None,
) -> EnqueuedCounts:
    """One message per customer the source names, each with the contact policy's decision,
    in ONE `INSERT … SELECT` (and its status history in the same statement).

    `source_sql` is a SELECT of one column `customer_id` (named `%(name)s` parameters in
    `source_params`), e.g. `SELECT customer_id FROM audiences_membership WHERE audience_id =
    %(audience)s AND exited_at IS NULL`. Each dedupe key is `dedupe_key_prefix` followed by
    the customer id (`campaign:5:`), so running it again creates only what is missing
    (`ON CONFLICT DO NOTHING`): a crashed snapshot resumes by running again. `campaign` (a
    Campaign) links the rows to it."""
    if not dedupe_key_prefix or len(dedupe_key_prefix) > 200:
        raise InvalidInput("a prefix of 1 to 200 characters", field="dedupe_key_prefix")
    at = at or timezone.now()
    version = template_version_for(template, template_version, channel)
    with_sql, params = policy_decisions_sql(
        workspace=workspace, channel=channel, kind=kind, source_sql=source_sql,
        source_params=source_params, at=at,
    )  # fmt: skip
    counter = [0]

    def bind(value) -> str:
        counter[0] += 1
        name = f"_outbox_{counter[0]}"
        params[name] = value
        return f"%({name})s"

    ws, at_sql = bind(workspace.id), f"{bind(at)}::timestamptz"
    columns, values = _insert_columns(
        Message,
        {
            "workspace_id": ws,
            "customer_id": "d.customer_id",
            "channel": bind(channel),
            "kind": bind(kind),
            "dedupe_key": f"{bind(dedupe_key_prefix)} || d.customer_id::text",
            "origin": _json_sql(origin, bind),
            "campaign_id": bind(campaign.id) if campaign is not None else "NULL",
            "template_id": bind(template.id) if template else "NULL",
            "template_version_id": bind(version.id) if version else "NULL",
            "address": "d.address",
            "render_input": _json_sql(render_input or {}, bind),
            "status": "d.status",
            "decision": "d.text",
            "decision_code": "d.code",
            "due_at": "d.due_at",
            "created_at": at_sql,
            "updated_at": at_sql,
        },
        bind,
    )
    history_columns, history_values = _insert_columns(
        MessageStatusChange,
        {
            "workspace_id": ws,
            "message_id": "ins.id",
            "status": "ins.status",
            "detail": "ins.decision",
            "at": at_sql,
        },
        bind,
    )
    statement = (
        f"{with_sql},\n"  # noqa: S608 (every value is bound)
        f"ins AS (INSERT INTO messaging_message ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM decided d ORDER BY d.customer_id "
        "ON CONFLICT (workspace_id, dedupe_key) DO NOTHING "
        "RETURNING id, status, decision, decision_code),\n"
        f"history AS (INSERT INTO messaging_messagestatuschange ({', '.join(history_columns)}) "
        f"SELECT {', '.join(history_values)} FROM ins)\n"
        "SELECT decision_code, count(*) FROM ins GROUP BY decision_code "
        "UNION ALL SELECT NULL, count(*) FROM decided"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # The statement's estimated cost passes jit_above_cost and compiling it took as long
        # as running it (bench/messaging: 5.4 of 11 s for 100,000 push recipients).
        cursor.execute(JIT_OFF)
        cursor.execute(statement, params)
        rows = cursor.fetchall()
        by_code = {code: count for code, count in rows if code is not None}
        decided = next(count for code, count in rows if code is None)
        if by_code.get(v.OK):
            task_wake_on_commit(SEND_TASK, workspace_id=workspace.id)
    return EnqueuedCounts(by_code=by_code, already_existing=decided - sum(by_code.values()))


def api_dedupe_key(idempotency_key) -> str:
    """`api:<Idempotency-Key>`; a key too long to fit is kept as its SHA-256."""
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise InvalidInput("the Idempotency-Key header is required", field="Idempotency-Key")
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidInput(
            f"at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters", field="Idempotency-Key"
        )
    if "\x00" in idempotency_key:
        raise InvalidInput("must not contain NUL characters", field="Idempotency-Key")
    if len(idempotency_key) > _DEDUPE_ROOM:
        return "api:#" + hashlib.sha256(idempotency_key.encode()).hexdigest()
    return f"api:{idempotency_key}"


def clean_event(event) -> dict:
    cleaned = normalize.clean_object(event, field="event")
    if len(json.dumps(cleaned)) > MAX_EVENT_BYTES:
        raise InvalidInput(f"at most {MAX_EVENT_BYTES:,} bytes as JSON", field="event")
    return cleaned


def message_send(
    *,
    customer: Customer,
    channel: str,
    kind: str,
    template: Template,
    event: dict | None,
    idempotency_key: str,
    at: datetime.datetime | None = None,
) -> Enqueued:
    """A send of one template to one customer, as the API asks it (`POST /api/v1/messages`):
    the dedupe key is `api:<Idempotency-Key>`. The same key again answers the same message if
    the request is the same one, and is a Conflict naming what differs otherwise."""
    dedupe_key = api_dedupe_key(idempotency_key)
    event = clean_event(event)
    if kind not in (v.MARKETING, v.TRANSACTIONAL):
        raise InvalidInput("marketing or transactional", field="kind")
    enqueued = message_enqueue(
        customer=customer,
        channel=channel,
        kind=kind,
        dedupe_key=dedupe_key,
        origin={"source": "api"},
        template=template,
        render_input={"event": event} if event else {},
        at=at,
    )
    if not enqueued.is_new:
        message = enqueued.message
        differs = [
            name
            for name, before, now in (
                ("customer", message.customer_id, customer.id),
                ("channel", message.channel, channel),
                ("template_id", message.template_id, template.id),
                ("kind", message.kind, kind),
                ("event", (message.render_input or {}).get("event") or {}, event),
            )
            if before != now
        ]
        if differs:
            raise Conflict(
                "this Idempotency-Key was used for another request (its "
                f"{', '.join(differs)} differ); use a new key for a new message",
                field="Idempotency-Key",
                code="idempotency_key_reused",
            )
    return enqueued


# ---------------------------------------------------------------------------------------------
# A campaign's messages before the hand-over (messaging.campaigns decides when; this module
# writes). The sender (messaging.sending) writes hand-over outcomes; delivery feedback
# (messaging.feedback.engagement) the statuses after them.

PENDING = tuple(status.value for status in PENDING_STATUSES)  # queued, deferred


def campaign_messages_at_local_time(campaign, workspace: Workspace) -> None:
    """Each pending message due at `local_date local_time` in its customer's zone (the
    workspace's when the customer has none or an unknown one); where that time has passed it
    stays due now (or at the end of its quiet hours)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_message m SET due_at = GREATEST(m.due_at, "
            "(%(day)s::date + %(clock)s::time) AT TIME ZONE z.zone) "
            "FROM profiles_customer c CROSS JOIN LATERAL (SELECT CASE WHEN c.timezone = "
            "ANY(%(zones)s::text[]) THEN c.timezone::text ELSE %(fallback)s::text END AS zone) z "
            "WHERE m.workspace_id = %(ws)s AND m.campaign_id = %(campaign)s "
            "AND m.status = ANY(%(held)s) AND c.id = m.customer_id AND c.workspace_id = %(ws)s",
            {
                "day": campaign.local_date,
                "clock": campaign.local_time,
                "zones": sorted(known_zones()),
                "fallback": workspace_zone(workspace),
                "ws": campaign.workspace_id,
                "campaign": campaign.id,
                "held": list(PENDING),
            },
        )


def campaign_messages_throttle(campaign, start: datetime.datetime) -> None:
    """The n-th pending message (by due time, then customer; from 0) is due no sooner than
    `start + n / throttle_per_minute` minutes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH ranked AS (SELECT id, row_number() OVER (ORDER BY due_at, customer_id) - 1 AS n "
            "FROM messaging_message WHERE workspace_id = %(ws)s AND campaign_id = %(campaign)s "
            "AND status = ANY(%(held)s)) "
            "UPDATE messaging_message m SET due_at = GREATEST(m.due_at, "
            "%(start)s::timestamptz + ranked.n * interval '60 seconds' / %(rate)s) "
            "FROM ranked WHERE m.id = ranked.id",
            {
                "ws": campaign.workspace_id,
                "campaign": campaign.id,
                "held": list(PENDING),
                "start": start,
                "rate": campaign.throttle_per_minute,
            },
        )


def campaign_messages_move(
    campaign, from_statuses, to_status: str | None, now, *, detail: str
) -> int:
    """One statement: the campaign's messages in `from_statuses` to `to_status` (None: back to
    `deferred` when the policy deferred them for quiet hours, else `queued`), each with its
    status change. Returns how many moved."""
    target = (
        "%(to)s"
        if to_status is not None
        else "CASE WHEN m.decision_code = %(deferred_code)s THEN 'deferred' ELSE 'queued' END"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH moved AS (UPDATE messaging_message m SET status = "  # noqa: S608 (fixed SQL)
            f"{target}, updated_at = %(now)s "
            "WHERE m.workspace_id = %(ws)s AND m.campaign_id = %(campaign)s "
            "AND m.status = ANY(%(from)s) RETURNING m.id, m.status), "
            "history AS (INSERT INTO messaging_messagestatuschange "
            "(workspace_id, message_id, status, detail, provider_event_id, at) "
            "SELECT %(ws)s, id, status, %(detail)s, '', %(now)s FROM moved) "
            "SELECT count(*) FROM moved",
            {
                "to": to_status,
                "deferred_code": v.QUIET_HOURS_DEFERRED,
                "now": now,
                "ws": campaign.workspace_id,
                "campaign": campaign.id,
                "from": list(from_statuses),
                "detail": detail,
            },
        )
        return cursor.fetchone()[0]
