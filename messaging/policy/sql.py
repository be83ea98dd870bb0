"""THE contact policy in SQL, for audience-sized sends: the same decisions as
`messaging.policy.decide.contact_decide`, for every customer a SQL source names, in one
statement (no per-customer Python). tests/messaging/test_policy_agreement.py holds the two
forms to the same answers.

`policy_decisions_sql` gives the common table expressions ending in `decided` (customer_id,
code, text, status, address, due_at); messaging.outbox inserts from it, and the campaign
builder counts it ("12,430 of 14,002 reachable").
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone

from masivo.tenancy.models import Workspace
from messaging.models import ContactPolicy
from messaging.policy import vocabulary as v
from messaging.policy.settings import contact_policy_get, known_zones, workspace_zone
from profiles.consent import consent_allows_sql, consent_opt_out
from profiles.services.settings import profile_settings_get

PARAM_PREFIX = "_policy_"


# For the transaction: an audience-sized statement passes jit_above_cost, and compiling it
# costs as much as running it (bench/messaging).
JIT_OFF = "SELECT set_config('jit', 'off', true)"


def binder(params: dict) -> Callable[[object], str]:
    def bind(value) -> str:
        name = f"{PARAM_PREFIX}{len(params)}"
        params[name] = value
        return f"%({name})s"

    return bind


def _address_sql(channel: str, bind) -> str:
    if channel == "email":
        return (
            f"CASE WHEN length(c.email) <= {bind(v.EMAIL_MAX_LENGTH)} "
            f"AND c.email ~ {bind(v.EMAIL_PATTERN)} THEN c.email END"
        )
    if channel in ("whatsapp", "sms"):
        return f"CASE WHEN c.phone ~ {bind(v.E164_PATTERN)} THEN c.phone END"
    return "''::text"


def _plain(value):
    """An enum member as its value (str or int), so that every driver binds it."""
    return value if type(value) in (str, int) else value.value


def _case(value_sql: str, mapping: dict, bind, default: str = "NULL") -> str:
    if not mapping:
        return default
    arms = " ".join(f"WHEN {bind(_plain(key))} THEN {bind(text)}" for key, text in mapping.items())
    return f"CASE {value_sql} {arms} ELSE {default} END"


def policy_decisions_sql(
    *,
    workspace: Workspace,
    channel: str,
    kind: str,
    source_sql: str,
    source_params: dict,
    at: datetime.datetime | None = None,
    policy: ContactPolicy | None = None,
    opt_out: bool | None = None,
) -> tuple[str, dict]:
    """(`WITH` body, params): CTEs `src` (the caller's `source_sql`, a SELECT of one column
    `customer_id` with named `%(name)s` parameters, none starting with `_policy_`) … `decided`.

    A customer id the source names twice is decided twice; one of another workspace is left
    out (the join to customers is by workspace)."""
    if channel not in v.CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if kind not in (v.MARKETING, v.TRANSACTIONAL):
        raise ValueError(f"unknown kind {kind!r}")
    if any(name.startswith(PARAM_PREFIX) for name in source_params):
        raise ValueError(f"source parameters must not start with {PARAM_PREFIX!r}")
    at = at or timezone.now()
    is_marketing = kind == v.MARKETING
    params: dict = {}
    bind = binder(params)
    ws = bind(workspace.id)
    at_sql = f"{bind(at)}::timestamptz"
    ctes = [f"src AS ({source_sql})"]
    joins = []

    address = _address_sql(channel, bind)
    reachable = "f.address IS NOT NULL"
    if channel == "push":
        reachable += (
            " AND EXISTS (SELECT 1 FROM profiles_device d WHERE d.workspace_id = f.workspace_id"  # noqa: S608 (every value is bound)
            f" AND d.customer_id = f.customer_id AND d.push_enabled AND d.expires_at > {at_sql})"
        )

    blocked = "NULL::text"
    if channel in v.ADDRESSED_CHANNELS:
        joins.append(
            f"LEFT JOIN messaging_suppression s ON s.workspace_id = {ws} "
            f"AND s.channel = {bind(channel)} AND s.address = ({address})"
        )
        if is_marketing:
            blocked = "s.reason"
        else:
            blocked = (
                f"CASE WHEN s.reason = ANY({bind(list(v.BLOCKS_EVERY_KIND))}) THEN s.reason END"
            )

    consent, cap, zone, quiet_until = "true", "NULL::int", "NULL::text", "NULL::timestamptz"
    caps: list[dict] = []
    policy_obj = None
    if is_marketing:
        purpose = v.CHANNEL_PURPOSE[channel]
        if purpose is not None:
            if opt_out is None:
                opt_out = consent_opt_out(profile_settings_get(workspace=workspace))
            consent = consent_allows_sql("c.consent", bind(purpose), opt_out=opt_out, bind=bind)
        policy_obj = policy or contact_policy_get(workspace=workspace)
        caps = [cap for cap in policy_obj.frequency_caps or [] if cap["channel"] in (channel, "*")]
        if caps:
            oldest = at - datetime.timedelta(hours=max(cap["window_hours"] for cap in caps))
            counts = ", ".join(
                "count(*) FILTER (WHERE m.sent_at > "
                f"{bind(at - datetime.timedelta(hours=cap['window_hours']))}::timestamptz"
                + ("" if cap["channel"] == "*" else f" AND m.channel = {bind(cap['channel'])}")
                + f") AS cap{index}"
                for index, cap in enumerate(caps)
            )
            ctes.append(
                f"sent AS (SELECT m.customer_id, {counts} FROM messaging_message m "  # noqa: S608 (every value is bound)
                f"WHERE m.workspace_id = {ws} AND m.kind = {bind(v.MARKETING)} "
                f"AND m.status = ANY({bind(list(v.SENT_STATUSES))}) "
                f"AND m.sent_at > {bind(oldest)}::timestamptz AND m.sent_at <= {at_sql} "
                "AND m.customer_id IN (SELECT customer_id FROM src) GROUP BY m.customer_id)"
            )
            joins.append("LEFT JOIN sent ON sent.customer_id = c.id")
            arms = " ".join(
                f"WHEN coalesce(sent.cap{index}, 0) >= {bind(cap['limit'])} THEN {index}"
                for index, cap in enumerate(caps)
            )
            cap = f"CASE {arms} END"
        if policy_obj.quiet_hours_enabled and channel in policy_obj.quiet_hours_channels:
            zone = (
                f"CASE WHEN c.timezone IN (SELECT unnest({bind(sorted(known_zones()))}::text[])) "
                f"THEN c.timezone::text ELSE {bind(workspace_zone(workspace))}::text END"
            )
            start = f"{bind(policy_obj.quiet_hours_start)}::time"
            end = f"{bind(policy_obj.quiet_hours_end)}::time"
            local = f"({at_sql} AT TIME ZONE z.zone)"
            if policy_obj.quiet_hours_start == policy_obj.quiet_hours_end:
                is_quiet = "false"  # an empty window
            elif policy_obj.quiet_hours_start < policy_obj.quiet_hours_end:
                is_quiet = f"({local}::time >= {start} AND {local}::time < {end})"
            else:
                is_quiet = f"({local}::time >= {start} OR {local}::time < {end})"
            quiet_until = (
                f"CASE WHEN {is_quiet} THEN ((CASE WHEN {local}::time < {end} THEN {local}::date "
                f"ELSE {local}::date + 1 END) + {end}) AT TIME ZONE z.zone END"
            )

    ctes.append(
        "facts AS (SELECT c.id AS customer_id, c.workspace_id, "  # noqa: S608 (every value is bound)
        f"({address}) AS address, {blocked} AS blocked, {consent} AS consent, "
        f"{cap} AS cap, z.zone, {quiet_until} AS quiet_until "
        f"FROM src JOIN profiles_customer c ON c.id = src.customer_id AND c.workspace_id = {ws} "
        f"CROSS JOIN LATERAL (SELECT {zone} AS zone) z {' '.join(joins)})"
    )
    skip = (
        policy_obj is not None
        and policy_obj.quiet_hours_action == ContactPolicy.QuietHoursAction.SKIP
    )
    quiet_code = v.QUIET_HOURS_SKIPPED if skip else v.QUIET_HOURS_DEFERRED
    ctes.append(
        "coded AS (SELECT f.*, CASE "  # noqa: S608 (every value is bound)
        f"WHEN NOT ({reachable}) THEN {bind(v.NO_ADDRESS)} "
        f"WHEN f.blocked IS NOT NULL THEN {bind(v.SUPPRESSED)} "
        f"WHEN NOT f.consent THEN {bind(v.NO_CONSENT)} "
        f"WHEN f.cap IS NOT NULL THEN {bind(v.FREQUENCY_CAP)} "
        f"WHEN f.quiet_until IS NOT NULL THEN {bind(quiet_code)} "
        f"ELSE {bind(v.OK)} END AS code FROM facts f)"
    )
    if policy_obj is not None and quiet_code == v.QUIET_HOURS_SKIPPED:
        quiet_text = bind(
            v.quiet_skipped_text(policy_obj.quiet_hours_start, policy_obj.quiet_hours_end, "")
        )
    elif policy_obj is not None:
        quiet_text = bind(v.quiet_deferred_text(policy_obj.quiet_hours_end, ""))
    else:
        quiet_text = "''"
    texts = {
        v.NO_ADDRESS: bind(v.NO_ADDRESS_TEXTS.get(channel, "")),
        v.SUPPRESSED: _case("o.blocked", v.SUPPRESSION_TEXTS, bind),
        v.NO_CONSENT: bind(v.NO_CONSENT_TEXT),
        v.FREQUENCY_CAP: _case("o.cap", {i: v.cap_text(c) for i, c in enumerate(caps)}, bind),
        v.QUIET_HOURS_DEFERRED: f"{quiet_text} || o.zone",
        v.QUIET_HOURS_SKIPPED: f"{quiet_text} || o.zone",
    }
    text = (
        "CASE o.code "
        + " ".join(f"WHEN {bind(code)} THEN {sql}" for code, sql in texts.items())
        + f" ELSE {bind(v.OK_TEXT)} END"
    )
    status = _case("o.code", v.STATUS_FOR_CODE, bind)
    ctes.append(
        f"decided AS (SELECT o.customer_id, o.code, {text} AS text, {status} AS status, "  # noqa: S608 (every value is bound)
        f"CASE WHEN o.code = {bind(v.NO_ADDRESS)} THEN '' ELSE o.address END AS address, "
        f"CASE WHEN o.code = {bind(v.QUIET_HOURS_DEFERRED)} THEN o.quiet_until "
        f"ELSE {at_sql} END AS due_at FROM coded o)"
    )
    return "WITH " + ",\n".join(ctes), params | source_params


def _decided_rows(select: str, **decision) -> list[tuple]:
    """`select` (a SELECT over the CTE `decided`) run after the policy's CTEs for `decision`
    (workspace, channel, kind, source_sql, source_params, at), JIT off; writes nothing."""
    with_sql, params = policy_decisions_sql(**decision)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(JIT_OFF)
        cursor.execute(f"{with_sql} {select}", params)
        return cursor.fetchall()


def contact_decide_many(
    *,
    workspace: Workspace,
    channel: str,
    kind: str,
    source_sql: str,
    source_params: dict,
    at: datetime.datetime | None = None,
) -> dict[int, v.Decision]:
    """Each customer's decision by the SQL form, without writing anything (previews, tests)."""
    rows = _decided_rows(
        "SELECT customer_id, code, text, address, due_at FROM decided",
        workspace=workspace, channel=channel, kind=kind, source_sql=source_sql,
        source_params=source_params, at=at,
    )  # fmt: skip
    return {
        customer_id: v.Decision(code=code, text=text, address=address, due_at=due_at)
        for customer_id, code, text, address, due_at in rows
    }


def contact_decisions_count(
    *,
    workspace: Workspace,
    channel: str,
    kind: str,
    source_sql: str,
    source_params: dict,
    at: datetime.datetime | None = None,
) -> dict[str, int]:
    """How many customers of the source each decision code has (the campaign builder's
    "12,430 of 14,002 reachable: 1,204 no consent, 368 no email")."""
    rows = _decided_rows(
        "SELECT code, count(*) FROM decided GROUP BY code",
        workspace=workspace, channel=channel, kind=kind, source_sql=source_sql,
        source_params=source_params, at=at,
    )  # fmt: skip
    return dict(rows)
