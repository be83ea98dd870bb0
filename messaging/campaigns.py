"""One-shot campaigns: a template (or A/B variants of it) to one or more audiences minus
exclusions, sent now, at an instant, or at a local time in each customer's zone, throttled.

Life of a campaign: `draft` (editable, deletable) → `scheduled` (its start is due at
`send_at`) → `sending` (claimed by one start: the recipients are snapshotted set-based, one
message per customer through `messaging.outbox.messages_enqueue_from_sql` with the contact
policy's decision) → `completed` when none of its messages is pending (the beat tick), or
`paused` / `canceled` on the way. Everything that touches its messages is one set-based
statement: memory is flat in the number of recipients.

The start is claimed by a conditional UPDATE (two workers never both snapshot one campaign),
and the snapshot, its due times and its counts commit in one transaction, so the sender never
sees a message before its throttled or local due time. A start that crashed is claimed again by
the tick once its lease (`updated_at`) is stale; the dedupe keys `campaign:<id>:<customer>`
make a second snapshot add nothing.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from masivo.tenancy.actors import Actor
from masivo.tenancy.context import all_workspaces
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from masivo.tenancy.wakeups import task_wake_on_commit
from messaging.models import (
    AudienceTopic,
    Campaign,
    Channel,
    Message,
    MessageKind,
    MessageStatus,
    Template,
)
from messaging.outbox import PENDING as HELD  # waiting for the sender: pause holds, cancel ends
from messaging.outbox import (
    SEND_TASK,
    campaign_messages_at_local_time,
    campaign_messages_move,
    campaign_messages_throttle,
    messages_enqueue_from_sql,
    template_version_for,
)
from messaging.policy import contact_decisions_count
from messaging.policy import vocabulary as v

logger = logging.getLogger(__name__)

START_TASK = "messaging.campaign_start"
START_LEASE = datetime.timedelta(
    minutes=15
)  # a `sending` campaign unsnapshotted this long restarts
MAX_AUDIENCES = 20
MAX_VARIANTS = 5
S = Campaign.Status
# A campaign's messages the sender has still to hand over (or that a pause holds).
PENDING = (
    MessageStatus.QUEUED.value,
    MessageStatus.DEFERRED.value,
    MessageStatus.SENDING.value,
    MessageStatus.PAUSED.value,
)
EDITABLE_FIELDS = (
    "name", "channel", "kind", "audience_ids", "excluded_audience_ids", "variants",
    "send_to_topic", "send_at", "local_date", "local_time", "throttle_per_minute",
)  # fmt: skip


def _require(actor: Actor) -> None:
    if not actor.can(Permission.EDIT_MARKETING):
        raise NotAllowed("only marketers, admins and owners manage campaigns")


def _state_error(campaign: Campaign, action: str, allowed) -> Conflict:
    names = " or ".join(allowed)
    return Conflict(
        f"the campaign is {campaign.status}; only a {names} campaign can be {action}",
        field="status",
        code="campaign_state",
    )


def _require_status(campaign: Campaign, action: str, *allowed: str) -> None:
    if campaign.status not in allowed:
        raise _state_error(campaign, action, allowed)


# ---------------------------------------------------------------------------------------------
# Validation


def _ids(value, field_name: str, *, required: bool) -> list[int]:
    if value is None:
        value = []
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) and 0 < item < 2**63 for item in value
    ):
        raise InvalidInput("a list of audience ids", field=field_name)
    ids = sorted(set(value))
    if required and not ids:
        raise InvalidInput("at least one audience", field=field_name)
    if len(ids) > MAX_AUDIENCES:
        raise InvalidInput(f"at most {MAX_AUDIENCES} audiences", field=field_name)
    return ids


def _audiences_exist(ids: list[int], field_name: str) -> None:
    from audiences.models import Audience

    found = set(Audience.objects.filter(id__in=ids).values_list("id", flat=True))
    missing = [audience_id for audience_id in ids if audience_id not in found]
    if missing:
        raise InvalidInput(
            f"no audience {', '.join(map(str, missing))} in this workspace", field=field_name
        )


def _clean_variants(variants, channel: str) -> list[dict]:
    if not isinstance(variants, list) or not variants:
        raise InvalidInput("at least one variant (a template)", field="variants")
    if len(variants) > MAX_VARIANTS:
        raise InvalidInput(f"at most {MAX_VARIANTS} variants", field="variants")
    cleaned, names = [], set()
    for index, variant in enumerate(variants):
        where = f"variants[{index}]"
        if not isinstance(variant, dict):
            raise InvalidInput("an object with name, template_id and weight", field=where)
        name = variant.get("name") or chr(ord("A") + index)
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 40:
            raise InvalidInput("a name of 1 to 40 characters", field=f"{where}.name")
        name = name.strip()
        if name in names:
            raise InvalidInput(f"the name {name!r} is used twice", field=f"{where}.name")
        names.add(name)
        template_id = variant.get("template_id")
        if not isinstance(template_id, int) or isinstance(template_id, bool) or template_id < 1:
            raise InvalidInput("a template id", field=f"{where}.template_id")
        template = Template.objects.filter(id=template_id).first()
        if template is None:
            raise InvalidInput(
                f"no template {template_id} in this workspace", field=f"{where}.template_id"
            )
        if template.channel != channel:
            raise InvalidInput(
                f"the template is for {template.channel}, not {channel}",
                field=f"{where}.template_id",
            )
        if template.is_archived:
            raise InvalidInput("the template is archived", field=f"{where}.template_id")
        weight = variant.get("weight", 100 if len(variants) == 1 else None)
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
            raise InvalidInput("a weight from 1 to 100 (percent)", field=f"{where}.weight")
        cleaned.append({"name": name, "template_id": template_id, "weight": weight})
    total = sum(variant["weight"] for variant in cleaned)
    if total != 100:
        raise InvalidInput(f"the weights must sum to 100, not {total}", field="variants")
    return cleaned


def _clean(values: dict, workspace: Workspace) -> dict:
    """The campaign's fields from `values` (everything the model has), validated together."""
    name = values.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise InvalidInput("a name of 1 to 200 characters", field="name")
    channel = values.get("channel")
    if channel not in Channel.values:
        raise InvalidInput(f"one of {', '.join(Channel.values)}", field="channel")
    kind = values.get("kind") or MessageKind.MARKETING
    if kind not in MessageKind.values:
        raise InvalidInput("marketing or transactional", field="kind")
    audiences = _ids(values.get("audience_ids"), "audience_ids", required=True)
    excluded = _ids(values.get("excluded_audience_ids"), "excluded_audience_ids", required=False)
    both = sorted(set(audiences) & set(excluded))
    if both:
        raise InvalidInput(
            f"audience {', '.join(map(str, both))} is both included and excluded",
            field="excluded_audience_ids",
        )
    _audiences_exist(audiences, "audience_ids")
    _audiences_exist(excluded, "excluded_audience_ids")
    variants = values.get("variants")
    if variants is None and values.get("template_id") is not None:
        variants = [{"name": "A", "template_id": values["template_id"], "weight": 100}]
    variants = _clean_variants(variants, channel)
    send_to_topic = bool(values.get("send_to_topic"))
    if send_to_topic:
        if channel != Channel.PUSH:
            raise InvalidInput("only a push campaign can send to a topic", field="send_to_topic")
        if len(audiences) != 1 or excluded:
            raise InvalidInput(
                "a topic send goes to exactly one audience, without exclusions",
                field="send_to_topic",
            )
        if len(variants) != 1:
            raise InvalidInput("a topic send has one variant", field="send_to_topic")
        if not AudienceTopic.objects.filter(
            audience_id=audiences[0], status=AudienceTopic.Status.ACTIVE
        ).exists():
            raise InvalidInput(
                f"audience {audiences[0]} has no push topic (make one first)",
                field="send_to_topic",
            )
    send_at = values.get("send_at")
    if send_at is not None and (
        not isinstance(send_at, datetime.datetime) or timezone.is_naive(send_at)
    ):
        raise InvalidInput("an instant with its UTC offset", field="send_at")
    local_date, local_time = values.get("local_date"), values.get("local_time")
    if (local_date is None) != (local_time is None):
        missing = "local_date" if local_date is None else "local_time"
        raise InvalidInput("a local send needs both local_date and local_time", field=missing)
    if local_date is not None and not isinstance(local_date, datetime.date):
        raise InvalidInput("a date", field="local_date")
    if local_time is not None and not isinstance(local_time, datetime.time):
        raise InvalidInput("a time of day", field="local_time")
    if send_to_topic and local_date is not None:
        raise InvalidInput("a topic send has no local time", field="local_time")
    throttle = values.get("throttle_per_minute")
    if throttle is not None and (
        not isinstance(throttle, int) or isinstance(throttle, bool) or not 1 <= throttle <= 10**6
    ):
        raise InvalidInput("at least 1 message a minute", field="throttle_per_minute")
    if send_to_topic and throttle is not None:
        raise InvalidInput("a topic send is one call: no throttle", field="throttle_per_minute")
    return {
        "name": name.strip(), "channel": channel, "kind": kind, "audience_ids": audiences,
        "excluded_audience_ids": excluded, "variants": variants, "send_to_topic": send_to_topic,
        "send_at": send_at, "local_date": local_date, "local_time": local_time,
        "throttle_per_minute": throttle,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Drafts


def campaigns_list():
    return Campaign.objects.order_by("-created_at", "-id")


def campaign_create(*, workspace: Workspace, values: dict, actor: Actor) -> Campaign:
    _require(actor)
    cleaned = _clean(values, workspace)
    now = timezone.now()
    return Campaign.objects.create(
        workspace=workspace,
        created_by=actor.label[:64],
        created_at=now,
        updated_at=now,
        **cleaned,
    )


@transaction.atomic
def campaign_update(*, campaign: Campaign, values: dict, actor: Actor) -> Campaign:
    """Change a draft: the fields given replace the draft's (the rest stay), then all are
    validated together."""
    _require(actor)
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    _require_status(campaign, "edited", S.DRAFT)
    merged = {name: getattr(campaign, name) for name in EDITABLE_FIELDS}
    if "template_id" in values and "variants" not in values:
        merged["variants"] = None
    merged |= values
    cleaned = _clean(merged, campaign.workspace)
    for name, value in cleaned.items():
        setattr(campaign, name, value)
    campaign.updated_at = timezone.now()
    campaign.save()
    return campaign


@transaction.atomic
def campaign_delete(*, campaign: Campaign, actor: Actor) -> None:
    _require(actor)
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    _require_status(campaign, "deleted", S.DRAFT)
    campaign.delete()


# ---------------------------------------------------------------------------------------------
# Recipients


def _recipients_sql(campaign_or_values, low: int = 0, high: int = 100) -> tuple[str, dict]:
    """A SELECT of `customer_id`: members of any included audience minus members of any
    excluded one, each once, whose hash bucket (0-99, fixed per customer) is in [low, high)."""
    get = (
        campaign_or_values.get
        if isinstance(campaign_or_values, dict)
        else lambda name: getattr(campaign_or_values, name)
    )
    sql = (
        "SELECT DISTINCT m.customer_id FROM audiences_membership m "
        "WHERE m.workspace_id = %(campaign_ws)s AND m.audience_id = ANY(%(campaign_in)s) "
        "AND NOT EXISTS (SELECT 1 FROM audiences_membership x "
        "WHERE x.workspace_id = %(campaign_ws)s AND x.audience_id = ANY(%(campaign_out)s) "
        "AND x.customer_id = m.customer_id)"
    )
    params = {
        "campaign_ws": get("workspace_id"),
        "campaign_in": list(get("audience_ids")),
        "campaign_out": list(get("excluded_audience_ids") or []),
    }
    if (low, high) != (0, 100):
        sql += (
            " AND abs(hashtext(m.customer_id::text)::bigint) %% 100 >= %(campaign_low)s"
            " AND abs(hashtext(m.customer_id::text)::bigint) %% 100 < %(campaign_high)s"
        )
        params |= {"campaign_low": low, "campaign_high": high}
    return sql, params


def variant_ranges(variants: list[dict]) -> list[tuple[dict, int, int]]:
    """Each variant with its bucket range [low, high): weights 50/30/20 → 0-50, 50-80, 80-100."""
    ranges, low = [], 0
    for variant in variants:
        ranges.append((variant, low, low + variant["weight"]))
        low += variant["weight"]
    return ranges


@dataclass(frozen=True)
class Estimate:
    """Who a campaign would reach now: `total` recipients, `reachable` (sendable now or after
    quiet hours), and the count of each decision code."""

    total: int
    reachable: int
    by_code: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """ "12,430 of 14,002 reachable: 1,204 no consent, 368 no email address"."""
        reasons = [
            f"{count:,} {ESTIMATE_WORDS.get(code, code)}"
            for code, count in sorted(self.by_code.items(), key=lambda item: -item[1])
            if code not in (v.OK, v.QUIET_HOURS_DEFERRED) and count
        ]
        text = f"{self.reachable:,} of {self.total:,} reachable"
        return text + (": " + ", ".join(reasons) if reasons else "")


ESTIMATE_WORDS = {
    v.NO_ADDRESS: "no address",
    v.SUPPRESSED: "on the suppression list",
    v.NO_CONSENT: "no consent",
    v.FREQUENCY_CAP: "over a frequency cap",
    v.QUIET_HOURS_SKIPPED: "in quiet hours (skipped)",
}
NO_ADDRESS_WORDS = {
    Channel.EMAIL: "no email address",
    Channel.PUSH: "no active push device",
    Channel.WHATSAPP: "no phone number",
    Channel.SMS: "no phone number",
}


def campaign_estimate(
    *, workspace: Workspace, values: dict | Campaign, at: datetime.datetime | None = None
) -> Estimate:
    """The contact policy's counts for the campaign's recipients now (nothing is written).
    `values` is a saved campaign or the fields of one being built (validated)."""
    if isinstance(values, Campaign):
        channel, kind = values.channel, values.kind
        source = values
    else:
        cleaned = _clean(values, workspace)
        channel, kind = cleaned["channel"], cleaned["kind"]
        source = cleaned | {"workspace_id": workspace.id}
    sql, params = _recipients_sql(source)
    counts = contact_decisions_count(
        workspace=workspace, channel=channel, kind=kind, source_sql=sql, source_params=params,
        at=at,
    )  # fmt: skip
    total = sum(counts.values())
    reachable = counts.get(v.OK, 0) + counts.get(v.QUIET_HOURS_DEFERRED, 0)
    return Estimate(total=total, reachable=reachable, by_code=dict(sorted(counts.items())))


def estimate_words(estimate: Estimate, channel: str) -> str:
    """The estimate's summary with the channel's own "no address" words."""
    text = estimate.summary
    return text.replace("no address", NO_ADDRESS_WORDS.get(channel, "no address"))


# ---------------------------------------------------------------------------------------------
# Scheduling and starting


def _require_ready(campaign: Campaign) -> None:
    """A saved draft is checked again before it goes (an audience or template may have gone
    since): what is wrong is a 409 (the stored campaign), naming the field."""
    try:
        _clean({name: getattr(campaign, name) for name in EDITABLE_FIELDS}, campaign.workspace)
    except InvalidInput as error:
        raise Conflict(
            f"the campaign is not ready to send: {error.message}",
            field=error.field,
            code="campaign_incomplete",
        ) from error


def local_start_at(local_date: datetime.date, local_time: datetime.time) -> datetime.datetime:
    """When a local-time campaign must start: when that wall-clock time comes first anywhere
    (UTC+14)."""
    naive = datetime.datetime.combine(local_date, local_time)
    return (naive - datetime.timedelta(hours=14)).replace(tzinfo=datetime.UTC)


@transaction.atomic
def campaign_schedule(
    *, campaign: Campaign, actor: Actor, now: datetime.datetime | None = None
) -> Campaign:
    """A draft with `send_at` (or a local time) becomes scheduled; the tick starts it then."""
    _require(actor)
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    _require_status(campaign, "scheduled", S.DRAFT)
    _require_ready(campaign)
    if campaign.send_at is None and campaign.local_date is None:
        raise Conflict(
            "the campaign has no time to send: set send_at or local_date and local_time first",
            field="send_at",
            code="campaign_incomplete",
        )
    if campaign.send_at is None:
        campaign.send_at = max(local_start_at(campaign.local_date, campaign.local_time), now)
    campaign.status = S.SCHEDULED
    campaign.updated_at = now
    campaign.save(update_fields=["send_at", "status", "updated_at"])
    if campaign.send_at <= now:
        task_wake_on_commit(START_TASK, workspace_id=campaign.workspace_id, campaign_id=campaign.id)
    return campaign


@transaction.atomic
def campaign_send_now(
    *, campaign: Campaign, actor: Actor, now: datetime.datetime | None = None
) -> Campaign:
    """Start a draft or scheduled campaign now (a local time still applies to its due times)."""
    _require(actor)
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    _require_status(campaign, "sent", S.DRAFT, S.SCHEDULED)
    _require_ready(campaign)
    campaign.status = S.SCHEDULED
    campaign.send_at = now
    campaign.updated_at = now
    campaign.save(update_fields=["send_at", "status", "updated_at"])
    task_wake_on_commit(START_TASK, workspace_id=campaign.workspace_id, campaign_id=campaign.id)
    return campaign


def campaign_claim_start(*, campaign_id: int, now: datetime.datetime) -> bool:
    """Whether this caller may start the campaign: ONE conditional UPDATE moves it from
    `scheduled` (due) to `sending`, or takes over a start whose lease is stale. Two workers
    never both get True for the same lease."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_campaign SET status = 'sending', "
            "started_at = COALESCE(started_at, %(now)s), updated_at = %(now)s "
            "WHERE id = %(id)s AND ((status = 'scheduled' AND send_at <= %(now)s) "
            "OR (status = 'sending' AND snapshotted_at IS NULL AND updated_at < %(stale)s)) "
            "RETURNING id",
            {"id": campaign_id, "now": now, "stale": now - START_LEASE},
        )
        return cursor.fetchone() is not None


@dataclass(frozen=True)
class Started:
    started: bool  # False: another start has it, or it is not due
    created: dict[str, int] = field(default_factory=dict)
    already_existing: int = 0


def campaign_start(*, campaign_id: int, now: datetime.datetime | None = None) -> Started:
    """Claim and start the campaign: snapshot its recipients (or send to its topic)."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = campaign_claim_start(campaign_id=campaign_id, now=now)
    if not claimed:
        return Started(started=False)
    campaign = Campaign.objects.get(id=campaign_id)
    if campaign.send_to_topic:
        return _send_to_topic(campaign, now)
    return _snapshot(campaign, now)


def _snapshot(campaign: Campaign, now: datetime.datetime) -> Started:
    workspace = campaign.workspace
    created: dict[str, int] = {}
    already = 0
    try:
        with transaction.atomic():
            for variant, low, high in variant_ranges(campaign.variants):
                template = Template.objects.filter(id=variant["template_id"]).first()
                if template is None:
                    raise InvalidInput(
                        f"template {variant['template_id']} (variant {variant['name']}) is gone",
                        field="variants",
                    )
                sql, params = _recipients_sql(campaign, low, high)
                origin = {"source": "campaign", "campaign": campaign.id, "variant": variant["name"]}
                counts = messages_enqueue_from_sql(
                    workspace=workspace,
                    channel=campaign.channel,
                    kind=campaign.kind,
                    source_sql=sql,
                    source_params=params,
                    dedupe_key_prefix=f"campaign:{campaign.id}:",
                    origin=origin,
                    template=template,
                    campaign=campaign,
                    at=now,
                )
                for code, count in counts.by_code.items():
                    created[code] = created.get(code, 0) + count
                already += counts.already_existing
            if campaign.local_date is not None:
                campaign_messages_at_local_time(campaign, workspace)
            if campaign.throttle_per_minute:
                campaign_messages_throttle(campaign, now)
            _finish_snapshot(campaign, now)
    except InvalidInput as error:
        # A template archived or deleted since the campaign was scheduled: nothing was written
        # (the transaction rolled back); retrying would not help.
        logger.warning("campaign %s cannot start: %s", campaign.id, error.message)
        Campaign.objects.filter(id=campaign.id).update(
            status=S.FAILED, error=f"could not start: {error.message}"[:500],
            finished_at=now, updated_at=now,
        )  # fmt: skip
        return Started(started=False)
    return Started(started=True, created=created, already_existing=already)


def _decision_counts(campaign: Campaign) -> dict[str, int]:
    rows = (
        Message.objects.filter(workspace_id=campaign.workspace_id, campaign_id=campaign.id)
        .values_list("decision_code")
        .annotate(count=Count("id"))
    )
    return dict(sorted(rows))


def _finish_snapshot(campaign: Campaign, now: datetime.datetime) -> None:
    """Record the recipients and their decisions; a pause or cancel that came during the
    snapshot now applies to the messages it made."""
    locked = Campaign.objects.select_for_update().get(id=campaign.id)
    counts = _decision_counts(locked)
    locked.decision_counts = counts
    locked.recipients = sum(counts.values())
    locked.snapshotted_at = now
    locked.updated_at = now
    locked.save(update_fields=["decision_counts", "recipients", "snapshotted_at", "updated_at"])
    if locked.status == S.PAUSED:
        campaign_messages_move(
            locked, HELD, MessageStatus.PAUSED.value, now, detail="paused with its campaign"
        )
    elif locked.status == S.CANCELED:
        campaign_messages_move(
            locked, (*HELD, MessageStatus.PAUSED.value), MessageStatus.CANCELED.value, now,
            detail="canceled with its campaign",
        )  # fmt: skip


def _send_to_topic(campaign: Campaign, now: datetime.datetime) -> Started:
    """One FCM send to the audience's topic, rendered without a customer."""
    from firebase_admin import messaging as fcm
    from firebase_admin.exceptions import FirebaseError

    from messaging.channels.push import firebase_app
    from messaging.models import ChannelConnection
    from messaging.templating import TemplateRenderError, render_version
    from messaging.topics import topic_name
    from profiles.models import Customer

    workspace = campaign.workspace
    variant = campaign.variants[0]
    error = ""
    message_id = ""
    try:
        template = Template.objects.get(id=variant["template_id"])
        version = template_version_for(template, None, Channel.PUSH)
        rendered = render_version(
            version, customer=Customer(workspace_id=workspace.id), workspace=workspace, now=now
        )
        fields = rendered.fields
        connection_ = ChannelConnection.objects.filter(
            provider=ChannelConnection.Provider.FCM
        ).first()
        if connection_ is None:
            raise InvalidInput("Firebase Cloud Messaging is not connected", field="channel")
        account = connection_.credentials["service_account"]
        project_id = connection_.settings.get("project_id") or account["project_id"]
        data = {str(key): str(value) for key, value in (fields.get("data") or {}).items()}
        if fields.get("deep_link"):
            data["deep_link"] = str(fields["deep_link"])
        data["masivo_campaign_id"] = str(campaign.id)
        request = fcm.Message(
            topic=topic_name(workspace.id, campaign.audience_ids[0]),
            notification=fcm.Notification(
                title=fields.get("title") or None,
                body=fields.get("body") or None,
                image=fields.get("image") or None,
            ),
            data=data,
        )
        with firebase_app(account, project_id) as app:
            message_id = fcm.send(request, app=app)
    except (TemplateRenderError, FirebaseError, InvalidInput, ValueError) as failure:
        error = (getattr(failure, "reason", None) or str(failure))[:500] or type(failure).__name__
        logger.warning("campaign %s: topic send failed: %s", campaign.id, error)
    Campaign.objects.filter(id=campaign.id).update(
        status=S.FAILED if error else S.COMPLETED,
        topic_message_id=message_id or "",
        error=error,
        snapshotted_at=now,
        finished_at=now,
        updated_at=now,
    )
    return Started(started=True)


# ---------------------------------------------------------------------------------------------
# Pause, resume, cancel


@dataclass(frozen=True)
class Moved:
    campaign: Campaign
    messages: int


@transaction.atomic
def campaign_pause(
    *, campaign: Campaign, actor: Actor, now: datetime.datetime | None = None
) -> Moved:
    """Hold a sending campaign: its pending messages become `paused` (never claimed). A
    message being handed over right now finishes."""
    _require(actor)
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    _require_status(campaign, "paused", S.SENDING)
    moved = campaign_messages_move(
        campaign, HELD, MessageStatus.PAUSED.value, now, detail="paused with its campaign"
    )
    campaign.status, campaign.paused_at, campaign.updated_at = S.PAUSED, now, now
    campaign.save(update_fields=["status", "paused_at", "updated_at"])
    return Moved(campaign=campaign, messages=moved)


@transaction.atomic
def campaign_resume(
    *, campaign: Campaign, actor: Actor, now: datetime.datetime | None = None
) -> Moved:
    """Paused messages go back to `deferred` (a quiet-hours deferral) or `queued`, with their
    due times as they were (a due time that passed means now); a throttled campaign's are
    spread again from now at its rate."""
    _require(actor)
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    _require_status(campaign, "resumed", S.PAUSED)
    moved = campaign_messages_move(
        campaign, (MessageStatus.PAUSED.value,), None, now, detail="resumed with its campaign"
    )
    if campaign.throttle_per_minute:
        campaign_messages_throttle(campaign, now)  # spread again from now, not all at once
    campaign.status, campaign.paused_at, campaign.updated_at = S.SENDING, None, now
    campaign.save(update_fields=["status", "paused_at", "updated_at"])
    if moved:
        task_wake_on_commit(SEND_TASK, workspace_id=campaign.workspace_id)
    return Moved(campaign=campaign, messages=moved)


@transaction.atomic
def campaign_cancel(
    *, campaign: Campaign, actor: Actor, now: datetime.datetime | None = None
) -> Moved:
    """Stop a scheduled, sending or paused campaign for good: its pending and paused messages
    become `canceled` (what was handed over stays as it is)."""
    _require(actor)
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(id=campaign.id)
    _require_status(campaign, "canceled", S.SCHEDULED, S.SENDING, S.PAUSED)
    moved = campaign_messages_move(
        campaign, (*HELD, MessageStatus.PAUSED.value), MessageStatus.CANCELED.value, now,
        detail="canceled with its campaign",
    )  # fmt: skip
    campaign.status, campaign.finished_at, campaign.updated_at = S.CANCELED, now, now
    campaign.save(update_fields=["status", "finished_at", "updated_at"])
    return Moved(campaign=campaign, messages=moved)


# ---------------------------------------------------------------------------------------------
# The tick, progress and stats

PROGRESS_GROUPS = {
    "queued": (MessageStatus.QUEUED, MessageStatus.SENDING),
    "deferred": (MessageStatus.DEFERRED,),
    "paused": (MessageStatus.PAUSED,),
    "sent": (
        MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.OPENED,
        MessageStatus.CLICKED, MessageStatus.READ, MessageStatus.UNKNOWN,
    ),
    "failed": (MessageStatus.FAILED, MessageStatus.BOUNCED),
    "suppressed": (MessageStatus.SUPPRESSED,),
    "canceled": (MessageStatus.CANCELED,),
}  # fmt: skip


@dataclass(frozen=True)
class Progress:
    by_status: dict[str, int]
    total: int
    done: int  # no longer pending: handed over, failed, suppressed or canceled

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else int(self.done * 100 // self.total)

    @property
    def groups(self) -> dict[str, int]:
        return {
            name: sum(self.by_status.get(status.value, 0) for status in statuses)
            for name, statuses in PROGRESS_GROUPS.items()
        }


def campaign_progress(campaign: Campaign) -> Progress:
    """Counts by status of the campaign's messages (one GROUP BY on `message_ws_campaign`)."""
    rows = (
        Message.objects.filter(workspace_id=campaign.workspace_id, campaign_id=campaign.id)
        .values_list("status")
        .annotate(count=Count("id"))
        .order_by()
    )
    by_status = dict(sorted(rows))
    total = sum(by_status.values())
    pending = sum(by_status.get(status, 0) for status in PENDING)
    return Progress(by_status=by_status, total=total, done=total - pending)


def campaigns_tick(*, now: datetime.datetime | None = None) -> dict[str, list[int]]:
    """Beat (every 15 s), across workspaces: the campaigns whose start is due (and starts that
    crashed) to start, and sending campaigns with nothing pending marked completed. Returns
    {"start": [(workspace_id, campaign_id)...], "completed": [ids]}."""
    now = now or timezone.now()
    with all_workspaces(reason=TICK_REASON), connection.cursor() as cursor:
        cursor.execute(
            "SELECT workspace_id, id FROM messaging_campaign "
            "WHERE (status = 'scheduled' AND send_at <= %(now)s) "
            "OR (status = 'sending' AND snapshotted_at IS NULL AND updated_at < %(stale)s) "
            "ORDER BY send_at NULLS FIRST, id",
            {"now": now, "stale": now - START_LEASE},
        )
        due = [(row[0], row[1]) for row in cursor.fetchall()]
        cursor.execute(
            "UPDATE messaging_campaign c SET status = 'completed', finished_at = %(now)s, "
            "updated_at = %(now)s WHERE c.status = 'sending' AND c.snapshotted_at IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM messaging_message m WHERE m.workspace_id = "
            "c.workspace_id AND m.campaign_id = c.id AND m.status = ANY(%(pending)s)) "
            "RETURNING c.id",
            {"now": now, "pending": list(PENDING)},
        )
        completed = sorted(row[0] for row in cursor.fetchall())
    return {"start": due, "completed": completed}


TICK_REASON = "beat: start due campaigns and complete finished ones"

STAT_STATUSES = {
    "sent": (
        MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.OPENED,
        MessageStatus.CLICKED, MessageStatus.READ,
    ),
    "delivered": (
        MessageStatus.DELIVERED, MessageStatus.OPENED, MessageStatus.CLICKED, MessageStatus.READ,
    ),
    "opened": (MessageStatus.OPENED, MessageStatus.CLICKED, MessageStatus.READ),
    "clicked": (MessageStatus.CLICKED,),
    "bounced": (MessageStatus.BOUNCED,),
}  # fmt: skip
UNSUBSCRIBED_EVENT = "Message Unsubscribed"


@dataclass(frozen=True)
class Stats:
    """Messages that reached each stage (from their status history: an opened message counts
    as delivered and sent too), the rates over those sent, per-hour series, per variant."""

    counts: dict[str, int]
    rates: dict[str, float]
    series: list[dict]
    variants: dict[str, dict[str, int]]


def campaign_stats(campaign: Campaign) -> Stats:
    """Delivered, opened, clicked, bounced and unsubscribed (with rates over sent), from the
    messages' status history, set-based; `series` is per hour (UTC) of the change."""
    stat_cases = ", ".join(
        f"bool_or(sc.status = ANY(%(stat_{name})s)) AS {name}" for name in STAT_STATUSES
    )
    params = {
        f"stat_{name}": [s.value for s in statuses] for name, statuses in STAT_STATUSES.items()
    }
    params |= {"ws": campaign.workspace_id, "campaign": campaign.id}
    every = sorted({s.value for statuses in STAT_STATUSES.values() for s in statuses})
    params["every"] = every
    sums = ", ".join(f"count(*) FILTER (WHERE {name})" for name in STAT_STATUSES)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH reached AS (SELECT m.id, m.origin->>'variant' AS variant, {stat_cases} "  # noqa: S608 (fixed SQL)
            "FROM messaging_message m JOIN messaging_messagestatuschange sc "
            "ON sc.message_id = m.id AND sc.workspace_id = m.workspace_id "
            "WHERE m.workspace_id = %(ws)s AND m.campaign_id = %(campaign)s "
            "AND sc.status = ANY(%(every)s) GROUP BY m.id, variant) "
            f"SELECT coalesce(variant, ''), {sums} FROM reached GROUP BY 1 ORDER BY 1",
            params,
        )
        by_variant = {
            row[0]: dict(zip(STAT_STATUSES, row[1:], strict=True)) for row in cursor.fetchall()
        }
        # The first hour each message reached each stage.
        cursor.execute(
            "SELECT date_trunc('hour', first_at) AS hour, stage, count(*) FROM ("
            "SELECT m.id, stage.name AS stage, min(sc.at) AS first_at "
            "FROM messaging_message m JOIN messaging_messagestatuschange sc "
            "ON sc.message_id = m.id AND sc.workspace_id = m.workspace_id "
            "JOIN (SELECT * FROM unnest(%(names)s::text[], %(lists)s::text[]) AS t(name, list)) "
            "stage ON sc.status = ANY(string_to_array(stage.list, ',')) "
            "WHERE m.workspace_id = %(ws)s AND m.campaign_id = %(campaign)s "
            "GROUP BY m.id, stage.name) firsts GROUP BY 1, 2 ORDER BY 1, 2",
            {
                "ws": campaign.workspace_id,
                "campaign": campaign.id,
                "names": list(STAT_STATUSES),
                "lists": [
                    ",".join(s.value for s in statuses) for statuses in STAT_STATUSES.values()
                ],
            },
        )
        hours: dict[datetime.datetime, dict[str, int]] = {}
        for hour, stage, count in cursor.fetchall():
            hours.setdefault(hour, dict.fromkeys(STAT_STATUSES, 0))[stage] = count
        cursor.execute(
            "SELECT count(DISTINCT customer_id) FROM profiles_event WHERE workspace_id = %(ws)s "
            "AND name = %(name)s AND properties->>'campaign_id' = %(campaign)s "
            "AND occurred_at >= %(since)s",
            {
                "ws": campaign.workspace_id,
                "name": UNSUBSCRIBED_EVENT,
                "campaign": str(campaign.id),
                "since": campaign.started_at or campaign.created_at,
            },
        )
        unsubscribed = cursor.fetchone()[0]
    counts = dict.fromkeys(STAT_STATUSES, 0)
    for variant_counts in by_variant.values():
        for name, count in variant_counts.items():
            counts[name] += count
    counts["unsubscribed"] = unsubscribed
    sent = counts["sent"]
    rates = {
        name: (round(counts[name] / sent, 4) if sent else 0.0)
        for name in ("delivered", "opened", "clicked", "bounced", "unsubscribed")
    }
    series = [{"hour": hour} | values for hour, values in sorted(hours.items())]
    return Stats(counts=counts, rates=rates, series=series, variants=by_variant)
