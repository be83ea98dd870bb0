"""Identifiers as each platform wants them: normalized once, then SHA-256 hashed where the
platform says so. Two forms that must agree (tests/destinations/test_identifiers.py holds them
to each other and to exact hashes):

- `member_identifiers(customer, platform, wanted)` in Python, for one customer (forwarding,
  conversion APIs, tests);
- `identifiers_sql(platform, wanted, alias)` as one jsonb expression over the customer row,
  for set-based syncs (the plan of an audience sync never loads customers into Python).

Stored values are canonical already (profiles.normalize: email trimmed and lower-cased, phone
E.164, country ISO-2 upper-case), so the SQL form only derives and hashes. The Python form
normalizes too, so raw input gives the same answer.

Per platform (INTEGRATIONS.md): Meta wants the phone as digits without `+`, names as lower-case
letters only, the country lower-case, and MADID and the external id unhashed; Google Ads and
TikTok want the phone in E.164 with `+`; TikTok hashes the external id (trimmed, lower-case).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from django.db import models


class Identifier(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    EXTERNAL_ID = "external_id", "External id"
    FIRST_NAME = "first_name", "First name"
    LAST_NAME = "last_name", "Last name"
    COUNTRY = "country", "Country"
    MADID = "madid", "Mobile advertising id (trait `madid`)"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _email(value: str) -> str:
    return value.strip().lower()


def _phone_e164(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"+{digits}" if digits else ""


def _phone_digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def _name(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalpha())


def _lower(value: str) -> str:
    return value.strip().lower()


def _as_is(value: str) -> str:
    return value.strip()


@dataclass(frozen=True)
class Rule:
    """How one identifier goes to one platform: a Python normalizer, its SQL twin over the
    stored value (`{v}`), and whether the result is hashed."""

    normalize: Callable[[str], str]
    sql: str
    hashed: bool = True


_EMAIL = Rule(_email, "{v}")
_PHONE_PLUS = Rule(_phone_e164, "{v}")
_PHONE_DIGITS = Rule(_phone_digits, "ltrim({v}, '+')")
_NAME = Rule(_name, "regexp_replace(lower({v}), '[^[:alpha:]]', '', 'g')")
_COUNTRY = Rule(_lower, "lower({v})")

PLATFORM_RULES: dict[str, dict[str, Rule]] = {
    "meta": {
        Identifier.EMAIL: _EMAIL,
        Identifier.PHONE: _PHONE_DIGITS,
        Identifier.FIRST_NAME: _NAME,
        Identifier.LAST_NAME: _NAME,
        Identifier.COUNTRY: _COUNTRY,
        Identifier.EXTERNAL_ID: Rule(_as_is, "btrim({v})", hashed=False),
        Identifier.MADID: Rule(_lower, "lower(btrim({v}))", hashed=False),
    },
    "google": {
        Identifier.EMAIL: _EMAIL,
        Identifier.PHONE: _PHONE_PLUS,
        Identifier.FIRST_NAME: _NAME,
        Identifier.LAST_NAME: _NAME,
        Identifier.COUNTRY: Rule(_lower, "lower({v})", hashed=False),
    },
    "tiktok": {
        Identifier.EMAIL: _EMAIL,
        Identifier.PHONE: _PHONE_PLUS,
        Identifier.EXTERNAL_ID: Rule(_lower, "lower(btrim({v}))"),
        Identifier.MADID: Rule(_lower, "lower(btrim({v}))"),  # IDFA_SHA256 / GAID_SHA256
    },
    # Platforms that take identifiers in clear (Braze, webhooks, S3, GA4): never hashed.
    "plain": {
        Identifier.EMAIL: Rule(_email, "{v}", hashed=False),
        Identifier.PHONE: Rule(_phone_e164, "{v}", hashed=False),
        Identifier.EXTERNAL_ID: Rule(_as_is, "btrim({v})", hashed=False),
        Identifier.FIRST_NAME: Rule(_as_is, "btrim({v})", hashed=False),
        Identifier.LAST_NAME: Rule(_as_is, "btrim({v})", hashed=False),
        Identifier.COUNTRY: Rule(_as_is, "{v}", hashed=False),
    },
}

# Where each identifier lives on the customer row.
_COLUMNS = {
    Identifier.EMAIL: "{a}.email",
    Identifier.PHONE: "{a}.phone",
    Identifier.EXTERNAL_ID: "{a}.external_id",
    Identifier.FIRST_NAME: "{a}.first_name",
    Identifier.LAST_NAME: "{a}.last_name",
    Identifier.COUNTRY: "{a}.country",
    Identifier.MADID: "({a}.traits ->> 'madid')",
}


def platform_identifiers(platform: str) -> list[str]:
    return list(PLATFORM_RULES[platform])


def identifier_value(platform: str, identifier: str, raw: str | None) -> str | None:
    """One identifier as `platform` takes it (normalized, hashed if it hashes), or None."""
    rule = PLATFORM_RULES[platform].get(identifier)
    if rule is None or not isinstance(raw, str):
        return None
    normalized = rule.normalize(raw)
    if not normalized:
        return None
    return sha256_hex(normalized) if rule.hashed else normalized


def _raw(customer, identifier: str) -> str | None:
    if identifier == Identifier.MADID:
        value = (customer.traits or {}).get("madid")
        return value if isinstance(value, str) else None
    return getattr(customer, identifier, None) or None


def member_identifiers(customer, platform: str, wanted: list[str]) -> dict[str, str]:
    """The customer's identifiers among `wanted`, for `platform`; missing ones left out."""
    values = {}
    for identifier in wanted:
        value = identifier_value(platform, identifier, _raw(customer, identifier))
        if value is not None:
            values[identifier] = value
    return values


def identifiers_sql(platform: str, wanted: list[str], alias: str = "c") -> str:
    """`member_identifiers` as one jsonb expression over a `profiles_customer` row named
    `alias`: an object of the present identifiers (`{}` when none)."""
    parts = []
    for identifier in wanted:
        rule = PLATFORM_RULES[platform].get(identifier)
        if rule is None:
            continue
        value = f"NULLIF(btrim({_COLUMNS[identifier].format(a=alias)}), '')"
        derived = f"NULLIF({rule.sql.format(v=value)}, '')"
        if rule.hashed:
            derived = f"encode(sha256(convert_to({derived}, 'UTF8')), 'hex')"
        parts.append(f"'{identifier}', {derived}")
    if not parts:
        return "'{}'::jsonb"
    return f"jsonb_strip_nulls(jsonb_build_object({', '.join(parts)}))"
