"""The hand-written recipient snapshot: one `INSERT … SELECT` that makes the same decisions as
Masivo's contact policy (reachable address, suppression list, consent under an opt-in regime,
frequency caps, quiet hours deferred to their end in the customer's zone) for every member of a
list audience, writes the same message rows and status history, and counts them per decision.
Run by the superuser (no row-level security), with the policy's settings as plain values.

Written for what the benchmark sets up: channel email or push, kind marketing, the workspace's
consent regime opt-in, caps given in order, an overnight quiet-hours window with "defer".
"""

from __future__ import annotations

import datetime

SENT = ("sent", "delivered", "opened", "clicked", "read")
SUPPRESSION_TEXT = {
    "hard_bounce": "suppressed: hard bounce",
    "invalid_address": "suppressed: invalid address",
    "spam_report": "suppressed: spam report",
    "unsubscribe": "suppressed: unsubscribed",
    "manual": "suppressed: on the suppression list",
}


def snapshot_sql(*, channel: str, caps: list[dict], quiet_end: datetime.time) -> str:
    """The statement; its parameters come from `snapshot_params`."""
    caps = [cap for cap in caps if cap["channel"] in (channel, "*")]
    counts = ", ".join(
        f"count(*) FILTER (WHERE m.sent_at > %(cap_since_{i})s"
        + ("" if cap["channel"] == "*" else f" AND m.channel = '{cap['channel']}'")
        + f") AS sent{i}"
        for i, cap in enumerate(caps)
    )
    capped = " ".join(
        f"WHEN coalesce(sent.sent{i}, 0) >= {cap['limit']} THEN {i}" for i, cap in enumerate(caps)
    )
    cap_texts = " ".join(
        f"WHEN {i} THEN 'suppressed: frequency cap {cap['limit']} per {cap['window_hours']} h "
        f"({'all channels' if cap['channel'] == '*' else cap['channel']})'"
        for i, cap in enumerate(caps)
    )
    suppression_texts = " ".join(f"WHEN '{k}' THEN '{t}'" for k, t in SUPPRESSION_TEXT.items())
    end = quiet_end.strftime("%H:%M")
    if channel == "email":
        address = (
            "CASE WHEN length(c.email) <= 254 AND c.email ~ %(email_pattern)s THEN c.email END"
        )
        reachable = "f.address IS NOT NULL"
        suppression_join = (
            "LEFT JOIN messaging_suppression s ON s.workspace_id = %(workspace)s "
            "AND s.channel = 'email' AND s.address = c.email"
        )
        reason = "s.reason"
        purpose = "email_marketing"
        no_address = "suppressed: no email address"
    else:
        address = "''::text"
        reachable = (
            "EXISTS (SELECT 1 FROM profiles_device d WHERE d.workspace_id = %(workspace)s "
            "AND d.customer_id = f.customer_id AND d.push_enabled AND d.expires_at > %(at)s)"
        )
        suppression_join = ""
        reason = "NULL::text"
        purpose = "push_notifications"
        no_address = "suppressed: no active push device"
    return f"""
WITH sent AS (
    SELECT m.customer_id, {counts}
      FROM messaging_message m
     WHERE m.workspace_id = %(workspace)s AND m.kind = 'marketing'
       AND m.status IN {SENT} AND m.sent_at > %(oldest)s AND m.sent_at <= %(at)s
     GROUP BY m.customer_id
), f AS (
    SELECT c.id AS customer_id, {address} AS address, {reason} AS reason,
           (c.consent -> '{purpose}' ->> 'status') = 'granted' AS consent,
           CASE {capped} END AS cap,
           coalesce(z.zone, %(workspace_zone)s) AS zone
      FROM audiences_membership a
      JOIN profiles_customer c ON c.id = a.customer_id AND c.workspace_id = %(workspace)s
      LEFT JOIN unnest(%(zones)s::text[]) AS z(zone) ON z.zone = c.timezone
      {suppression_join}
      LEFT JOIN sent ON sent.customer_id = c.id
     WHERE a.workspace_id = %(workspace)s AND a.audience_id = %(audience)s
), l AS (
    SELECT f.*, (%(at)s AT TIME ZONE f.zone) AS local FROM f
), d AS (
    SELECT f.*,
           CASE WHEN NOT ({reachable}) THEN 'no_address'
                WHEN reason IS NOT NULL THEN 'suppressed'
                WHEN consent IS NOT TRUE THEN 'no_consent'
                WHEN cap IS NOT NULL THEN 'frequency_cap'
                WHEN local::time >= %(quiet_start)s OR local::time < %(quiet_end)s
                    THEN 'quiet_hours_deferred'
                ELSE 'ok' END AS code
      FROM l AS f
), ins AS (
    INSERT INTO messaging_message (
        workspace_id, customer_id, channel, kind, dedupe_key, origin, campaign_id,
        template_id, template_version_id, locale, address, render_input, payload, status,
        decision, decision_code, due_at, attempts, sending_at, handover_at, provider,
        provider_message_id, error_code, error, created_at, updated_at, sent_at)
    SELECT %(workspace)s, customer_id, '{channel}', 'marketing', %(prefix)s || customer_id,
           %(origin)s::jsonb, %(campaign)s, %(template)s, %(version)s, '',
           CASE WHEN code = 'no_address' THEN '' ELSE address END, '{{}}', '{{}}',
           CASE code WHEN 'ok' THEN 'queued' WHEN 'quiet_hours_deferred' THEN 'deferred'
                ELSE 'suppressed' END,
           CASE code WHEN 'ok' THEN 'queued'
                WHEN 'no_address' THEN '{no_address}'
                WHEN 'suppressed' THEN CASE reason {suppression_texts} END
                WHEN 'no_consent' THEN 'suppressed: no consent'
                WHEN 'frequency_cap' THEN CASE cap {cap_texts} END
                ELSE 'deferred: quiet hours until {end} ' || zone END,
           code,
           CASE WHEN code = 'quiet_hours_deferred'
                THEN ((CASE WHEN local::time < %(quiet_end)s THEN local::date
                            ELSE local::date + 1 END) + %(quiet_end)s) AT TIME ZONE zone
                ELSE %(at)s END,
           0, NULL, NULL, '', '', '', '', %(at)s, %(at)s, NULL
      FROM d ORDER BY customer_id
    ON CONFLICT (workspace_id, dedupe_key) DO NOTHING
    RETURNING id, status, decision, decision_code
), history AS (
    INSERT INTO messaging_messagestatuschange
           (workspace_id, message_id, status, detail, provider_event_id, at)
    SELECT %(workspace)s, id, status, decision, '', %(at)s FROM ins
)
SELECT decision_code, count(*) FROM ins GROUP BY decision_code
"""


def snapshot_params(
    *, workspace: int, audience: int, at: datetime.datetime, caps: list[dict], channel: str,
    quiet_start: datetime.time, quiet_end: datetime.time, zones: list[str], workspace_zone: str,
    prefix: str, origin: str, campaign: int | None, template: int, version: int,
    email_pattern: str,
) -> dict:  # fmt: skip
    caps = [cap for cap in caps if cap["channel"] in (channel, "*")]
    params = {
        "workspace": workspace, "audience": audience, "at": at, "quiet_start": quiet_start,
        "quiet_end": quiet_end, "zones": zones, "workspace_zone": workspace_zone,
        "prefix": prefix, "origin": origin, "campaign": campaign, "template": template,
        "version": version,
        "oldest": at - datetime.timedelta(hours=max(cap["window_hours"] for cap in caps)),
    }  # fmt: skip
    if channel == "email":
        params["email_pattern"] = email_pattern
    for i, cap in enumerate(caps):
        params[f"cap_since_{i}"] = at - datetime.timedelta(hours=cap["window_hours"])
    return params
