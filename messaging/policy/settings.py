"""The workspace's contact policy settings (frequency caps, quiet hours): read and change.

One owner for `ContactPolicy`: the API, the dashboard and the policy itself call these.
Changing them is a workspace setting (`Permission.MANAGE_WORKSPACE`)."""

from __future__ import annotations

import datetime
import zoneinfo
from functools import cache

from django.utils import timezone

from masivo.tenancy.actors import Actor
from masivo.tenancy.errors import InvalidInput, NotAllowed
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from messaging.models import ContactPolicy
from messaging.policy.vocabulary import CHANNELS

MAX_CAPS = 20
MAX_CAP_LIMIT = 100_000
MAX_WINDOW_HOURS = 8760  # a year
CAP_FIELDS = {"channel", "limit", "window_hours"}
POLICY_FIELDS = (
    "frequency_caps",
    "quiet_hours_enabled",
    "quiet_hours_start",
    "quiet_hours_end",
    "quiet_hours_action",
    "quiet_hours_channels",
)


@cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def workspace_zone(workspace: Workspace) -> str:
    """The workspace's time zone, the fallback for customers without one (UTC if unknown)."""
    return workspace.timezone if workspace.timezone in known_zones() else "UTC"


def contact_policy_get(*, workspace: Workspace) -> ContactPolicy:
    """The workspace's policy row, created with the defaults on first use (race-safe)."""
    policy, _ = ContactPolicy.objects.get_or_create(workspace=workspace)
    return policy


def _whole_number(value, *, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("must be a whole number", field=field)
    if not low <= value <= high:
        raise InvalidInput(f"must be between {low:,} and {high:,}", field=field)
    return value


def clean_frequency_caps(value) -> list[dict]:
    if not isinstance(value, list):
        raise InvalidInput("must be a list of caps", field="frequency_caps")
    if len(value) > MAX_CAPS:
        raise InvalidInput(f"at most {MAX_CAPS} caps", field="frequency_caps")
    caps = []
    for index, cap in enumerate(value):
        where = f"frequency_caps[{index}]"
        if not isinstance(cap, dict):
            raise InvalidInput("must be an object with channel, limit, window_hours", field=where)
        unknown = sorted(str(name) for name in cap if name not in CAP_FIELDS)
        if unknown:
            raise InvalidInput("unknown field", field=f"{where}.{unknown[0]}")
        for name in sorted(CAP_FIELDS - set(cap)):
            raise InvalidInput("required", field=f"{where}.{name}")
        if cap["channel"] not in (*CHANNELS, "*"):
            raise InvalidInput(
                f"one of {', '.join(CHANNELS)} or * (every channel)", field=f"{where}.channel"
            )
        caps.append(
            {
                "channel": cap["channel"],
                "limit": _whole_number(
                    cap["limit"], field=f"{where}.limit", low=1, high=MAX_CAP_LIMIT
                ),
                "window_hours": _whole_number(
                    cap["window_hours"], field=f"{where}.window_hours", low=1, high=MAX_WINDOW_HOURS
                ),
            }
        )
    return caps


def clean_time(value, *, field: str) -> datetime.time:
    if isinstance(value, datetime.time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        try:
            return datetime.time(int(value[:2]), int(value[3:]))
        except ValueError:
            pass
    raise InvalidInput("a time of day as HH:MM (00:00 to 23:59)", field=field)


def clean_channels(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput("must be a list of channels", field="quiet_hours_channels")
    for item in value:
        if item not in CHANNELS:
            raise InvalidInput(f"one of {', '.join(CHANNELS)}", field="quiet_hours_channels")
    return [channel for channel in CHANNELS if channel in value]


def contact_policy_update(*, workspace: Workspace, changes: dict, actor: Actor) -> ContactPolicy:
    """Change the fields given (the others keep their value). Each bad value is an
    InvalidInput naming its field; nothing is saved then."""
    if not actor.can(Permission.MANAGE_WORKSPACE):
        raise NotAllowed("only admins and owners change the contact policy")
    if not isinstance(changes, dict):
        raise InvalidInput("must be an object")
    for name in changes:
        if name not in POLICY_FIELDS:
            raise InvalidInput("unknown field", field=str(name))
    policy = contact_policy_get(workspace=workspace)
    if "frequency_caps" in changes:
        policy.frequency_caps = clean_frequency_caps(changes["frequency_caps"])
    if "quiet_hours_enabled" in changes:
        if not isinstance(changes["quiet_hours_enabled"], bool):
            raise InvalidInput("must be true or false", field="quiet_hours_enabled")
        policy.quiet_hours_enabled = changes["quiet_hours_enabled"]
    for name in ("quiet_hours_start", "quiet_hours_end"):
        if name in changes:
            setattr(policy, name, clean_time(changes[name], field=name))
    if "quiet_hours_action" in changes:
        if changes["quiet_hours_action"] not in ContactPolicy.QuietHoursAction.values:
            raise InvalidInput("defer or skip", field="quiet_hours_action")
        policy.quiet_hours_action = changes["quiet_hours_action"]
    if "quiet_hours_channels" in changes:
        policy.quiet_hours_channels = clean_channels(changes["quiet_hours_channels"])
    policy.updated_at = timezone.now()
    policy.save()
    return policy
