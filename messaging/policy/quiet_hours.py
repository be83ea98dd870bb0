"""Quiet hours in a customer's time zone, as the SQL form computes them with `AT TIME ZONE`.

A window runs from `start` (included) to `end` (excluded) in local time; `start` after `end`
is an overnight window (21:00 to 08:00), `start` equal to `end` an empty one. A local time
that a DST change makes ambiguous or skips is read as Postgres reads it, so both forms give
the same instant: an ambiguous time (the hour repeated in autumn) is the later one, a skipped
time (spring) takes the offset in force before the change (02:30 in a 02:00→03:00 gap is
03:30).
"""

from __future__ import annotations

import datetime
from datetime import UTC
from zoneinfo import ZoneInfo


def is_quiet(local: datetime.time, start: datetime.time, end: datetime.time) -> bool:
    if start == end:
        return False  # an empty window
    if start < end:
        return start <= local < end
    return local >= start or local < end


def local_to_utc(naive: datetime.datetime, zone: ZoneInfo) -> datetime.datetime:
    later = naive.replace(tzinfo=zone, fold=1)
    if later.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return later.astimezone(UTC)  # exists: unambiguous, or the later of two
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)  # skipped by a DST change


def quiet_hours_until(
    at: datetime.datetime, *, zone_name: str, start: datetime.time, end: datetime.time
) -> datetime.datetime | None:
    """When the quiet hours `at` falls in end (UTC), or None when `at` is not in them."""
    zone = ZoneInfo(zone_name)
    local = at.astimezone(zone).replace(tzinfo=None)
    if not is_quiet(local.time(), start, end):
        return None
    day = local.date() if local.time() < end else local.date() + datetime.timedelta(days=1)
    return local_to_utc(datetime.datetime.combine(day, end), zone)
