"""THE contact policy for one customer (the Python form; messaging/policy/sql.py is the same
policy for a whole audience in one statement, and tests hold the two to the same answers).

In order, the first that applies decides:
1. a reachable address (email, an active push device, an E.164 phone; in-app always);
2. the suppression list: hard bounces and invalid addresses block every kind, the other
   reasons marketing only;
3. consent for the channel's purpose under the workspace's regime (marketing only);
4. frequency caps, counted on marketing messages sent in the rolling window (marketing only);
5. quiet hours in the customer's time zone: defer to their end, or skip (marketing only).
"""

from __future__ import annotations

import datetime
import re

from django.db.models import Count, Q
from django.utils import timezone

from messaging.models import ContactPolicy, Message, Suppression
from messaging.policy import vocabulary as v
from messaging.policy.quiet_hours import quiet_hours_until
from messaging.policy.settings import contact_policy_get, known_zones, workspace_zone
from profiles.consent import consent_allows, consent_opt_out
from profiles.models import Customer, Device
from profiles.services.settings import profile_settings_get

_EMAIL = re.compile(v.EMAIL_PATTERN)
_E164 = re.compile(v.E164_PATTERN)


def customer_address(customer: Customer, channel: str) -> str | None:
    """The address the channel sends to ("" for in-app), or None when there is none."""
    if channel == "email":
        email = customer.email or ""  # stored trimmed and lower-cased (profiles.normalize)
        if len(email) <= v.EMAIL_MAX_LENGTH and _EMAIL.fullmatch(email):
            return email
        return None
    if channel in ("whatsapp", "sms"):
        phone = customer.phone or ""
        return phone if _E164.fullmatch(phone) else None
    return ""


def has_active_device(customer: Customer, at: datetime.datetime) -> bool:
    return Device.objects.filter(
        customer_id=customer.id, push_enabled=True, expires_at__gt=at
    ).exists()


def customer_zone(customer: Customer, fallback: str) -> str:
    return customer.timezone if customer.timezone in known_zones() else fallback


def capped_by(
    customer: Customer, channel: str, caps: list[dict], at: datetime.datetime
) -> dict | None:
    """The first cap (in the settings' order) the customer has reached on `channel`."""
    applicable = [cap for cap in caps if cap["channel"] in (channel, "*")]
    if not applicable:
        return None
    oldest = at - datetime.timedelta(hours=max(cap["window_hours"] for cap in applicable))
    counts = Message.objects.filter(
        customer_id=customer.id,
        kind=v.MARKETING,
        status__in=v.SENT_STATUSES,
        sent_at__gt=oldest,
        sent_at__lte=at,
    ).aggregate(
        **{
            f"cap{index}": Count(
                "id",
                filter=Q(sent_at__gt=at - datetime.timedelta(hours=cap["window_hours"]))
                & (Q() if cap["channel"] == "*" else Q(channel=cap["channel"])),
            )
            for index, cap in enumerate(applicable)
        }
    )
    for index, cap in enumerate(applicable):
        if counts[f"cap{index}"] >= cap["limit"]:
            return cap
    return None


def contact_decide(
    *,
    customer: Customer,
    channel: str,
    kind: str,
    at: datetime.datetime | None = None,
    policy: ContactPolicy | None = None,
    opt_out: bool | None = None,
) -> v.Decision:
    """Whether and when `customer` may get a `kind` message on `channel` at `at` (now).

    `policy` (the workspace's ContactPolicy) and `opt_out` (its consent regime) are read when
    not given; pass them when deciding for many customers of one workspace."""
    if channel not in v.CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if kind not in (v.MARKETING, v.TRANSACTIONAL):
        raise ValueError(f"unknown kind {kind!r}")
    at = at or timezone.now()
    workspace = customer.workspace
    is_marketing = kind == v.MARKETING

    def decided(code: str, text: str, address: str = "", due_at=None) -> v.Decision:
        return v.Decision(code=code, text=text, address=address, due_at=due_at or at)

    address = customer_address(customer, channel)
    if address is None or (channel == "push" and not has_active_device(customer, at)):
        return decided(v.NO_ADDRESS, v.NO_ADDRESS_TEXTS[channel])

    if channel in v.ADDRESSED_CHANNELS:
        reason = (
            Suppression.objects.filter(channel=channel, address=address)
            .values_list("reason", flat=True)
            .first()
        )
        if reason is not None and (is_marketing or reason in v.BLOCKS_EVERY_KIND):
            return decided(v.SUPPRESSED, v.SUPPRESSION_TEXTS[reason], address)

    if not is_marketing:
        return decided(v.OK, v.OK_TEXT, address)

    purpose = v.CHANNEL_PURPOSE[channel]
    if purpose is not None:
        if opt_out is None:
            opt_out = consent_opt_out(profile_settings_get(workspace=workspace))
        if not consent_allows(customer.consent, purpose, opt_out=opt_out):
            return decided(v.NO_CONSENT, v.NO_CONSENT_TEXT, address)

    policy = policy or contact_policy_get(workspace=workspace)
    cap = capped_by(customer, channel, policy.frequency_caps or [], at)
    if cap is not None:
        return decided(v.FREQUENCY_CAP, v.cap_text(cap), address)

    if policy.quiet_hours_enabled and channel in policy.quiet_hours_channels:
        zone = customer_zone(customer, workspace_zone(workspace))
        start, end = policy.quiet_hours_start, policy.quiet_hours_end
        until = quiet_hours_until(at, zone_name=zone, start=start, end=end)
        if until is not None:
            if policy.quiet_hours_action == ContactPolicy.QuietHoursAction.SKIP:
                return decided(
                    v.QUIET_HOURS_SKIPPED, v.quiet_skipped_text(start, end, zone), address
                )
            return decided(v.QUIET_HOURS_DEFERRED, v.quiet_deferred_text(end, zone), address, until)

    return decided(v.OK, v.OK_TEXT, address)
