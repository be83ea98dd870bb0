"""Consent: the one place that answers "may we contact this customer for purpose P?".

THE consent policy is `CONSENT_POLICY`: for each status a purpose can have (granted, denied, not
recorded) under each regime (opt-in, opt-out), whether it allows contact. Everything that
decides consent uses one of its two forms, never its own reading of the rule:
- `consent_allows(consent, purpose, opt_out=...)` for one customer's `consent` document: the
  rule evaluator, `may_contact`, and sends or exports that hold a customer;
- `consent_allows_sql(column_sql, purpose_param, opt_out=..., bind=...)`, the same answer as a
  boolean SQL expression over a `consent` jsonb column: the rule compiler, and set-based sends
  and syncs.
A purpose with no record, or a record without a status, is not recorded; any stored status other
than granted reads as denied (fails closed). `consent_opt_out(settings)` gives a workspace's
regime. tests/profiles/test_consent_policy.py holds both forms to the table on real Postgres.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from django.db import transaction
from django.utils import timezone

from masivo.tenancy.errors import InvalidInput
from profiles.changes import profile_changes_record
from profiles.models import ConsentChange, ConsentPurpose, ConsentStatus, Customer, ProfileSettings
from profiles.normalize import strip_nul

GRANTED = ConsentStatus.GRANTED.value
DENIED = ConsentStatus.DENIED.value
NOT_RECORDED = None

# (status, opt_out) → allowed. The opt-out regime is the only difference: not recorded = allowed.
CONSENT_POLICY = MappingProxyType(
    {
        (GRANTED, False): True,
        (GRANTED, True): True,
        (DENIED, False): False,
        (DENIED, True): False,
        (NOT_RECORDED, False): False,
        (NOT_RECORDED, True): True,
    }
)


def recorded_consent_status(consent: dict | None, purpose: str):
    """The status stored for `purpose` as it is (None when nothing is recorded)."""
    record = consent.get(purpose) if isinstance(consent, dict) else None
    return record.get("status") if isinstance(record, dict) else None


def consent_policy_status(consent: dict | None, purpose: str) -> str | None:
    """The row of `CONSENT_POLICY` that applies: granted, denied or NOT_RECORDED."""
    status = recorded_consent_status(consent, purpose)
    if status is None:
        return NOT_RECORDED
    return GRANTED if status == GRANTED else DENIED


def consent_allows(consent: dict | None, purpose: str, *, opt_out: bool) -> bool:
    """Whether a customer's `consent` document allows contact for `purpose` under the regime."""
    return CONSENT_POLICY[consent_policy_status(consent, purpose), opt_out]


def consent_allows_sql(
    column_sql: str, purpose_param: str, *, opt_out: bool, bind: Callable[[object], str]
) -> str:
    """`consent_allows` as a boolean SQL expression, never NULL, over the jsonb `column_sql`.

    `purpose_param` is the caller's placeholder for the purpose and `bind(value)` binds a value
    and returns its placeholder. Both `column_sql` and `purpose_param` appear twice, so
    placeholders must be named (`%(name)s`). One CASE on the status text, like the `#>>` tests
    of profile fields: no subquery, nothing the planner has to estimate.
    """
    status = f"({column_sql} -> {purpose_param} ->> 'status')"

    def answer(policy_status: str | None) -> str:
        return bind(CONSENT_POLICY[policy_status, opt_out])

    return (
        f"(CASE WHEN {status} = {bind(GRANTED)} THEN {answer(GRANTED)} "
        f"WHEN {status} IS NULL THEN {answer(NOT_RECORDED)} ELSE {answer(DENIED)} END)"
    )


# Vendors (destinations, by their key): a recorded grant allows and a recorded denial stops;
# with no decision recorded, the workspace's `vendor_consent_required` decides. The purpose
# must allow it as well: a vendor decision narrows a purpose, it never widens it.
def vendor_allows(vendors: dict | None, vendor: str, *, required: bool) -> bool:
    """Whether a customer's `consent_vendors` document allows `vendor`."""
    status = recorded_consent_status(vendors, vendor)
    if status is None:
        return not required
    return status == GRANTED


def vendor_allows_sql(
    column_sql: str, vendor_param: str, *, required: bool, bind: Callable[[object], str]
) -> str:
    """`vendor_allows` as a boolean SQL expression, never NULL, over the jsonb `column_sql`."""
    status = f"({column_sql} -> {vendor_param} ->> 'status')"
    return (
        f"(CASE WHEN {status} IS NULL THEN {bind(not required)} "
        f"ELSE {status} = {bind(GRANTED)} END)"
    )


def consent_opt_out(settings: ProfileSettings) -> bool:
    """The workspace's regime as the policy takes it: True when not recorded means allowed."""
    return settings.consent_regime == ProfileSettings.ConsentRegime.OPT_OUT


def consent_status(customer: Customer, purpose: str) -> str | None:
    return recorded_consent_status(customer.consent, purpose)


def may_contact(customer: Customer, purpose: str, *, settings: ProfileSettings) -> bool:
    """THE consent policy (`consent_allows`) for one of the listed purposes, under the
    workspace's regime."""
    if purpose not in ConsentPurpose.values:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    return consent_allows(customer.consent, purpose, opt_out=consent_opt_out(settings))


def clean_consent_changes(changes) -> dict[str, str | None]:
    if not isinstance(changes, dict):
        raise InvalidInput(
            "must be an object of purpose → granted | denied | null", field="consent"
        )
    cleaned = {}
    for purpose, status in changes.items():
        if purpose not in ConsentPurpose.values:
            raise InvalidInput(
                f"unknown purpose; one of {', '.join(ConsentPurpose.values)}",
                field=f"consent.{purpose}",
            )
        if isinstance(status, bool):
            status = ConsentStatus.GRANTED if status else ConsentStatus.DENIED
        if status not in (ConsentStatus.GRANTED, ConsentStatus.DENIED, None):
            raise InvalidInput("granted, denied or null", field=f"consent.{purpose}")
        cleaned[purpose] = status
    return cleaned


@transaction.atomic
def consent_update(
    *, customer: Customer, changes: dict, source: str, now: datetime | None = None
) -> Customer:
    """Record decisions (None clears one back to "not recorded"); unchanged ones are no-ops.

    `changes` is the `consent` object of the API: purpose → decision, and optionally
    `vendors` and `consent_string` with `consent_string_version` (`clean_consent_input`).
    Each change writes a history row and its profile-change key, in this transaction.
    """
    now = now or timezone.now()
    cleaned = clean_consent_input(changes)
    customer = Customer.objects.select_for_update().get(id=customer.id)
    recorded = [
        *_record_purposes(customer, cleaned.purposes, source=source, now=now),
        *_record_vendors(customer, cleaned.vendors, source=source, now=now),
        *_record_consent_string(customer, cleaned.consent_string, source=source, now=now),
    ]
    if recorded:
        customer.updated_at = now
        customer.save(update_fields=[*CONSENT_COLUMNS, "updated_at"])
        ConsentChange.objects.bulk_create(change for change, _ in recorded)
        keys = {key for _, key in recorded} | {"field:updated_at"}
        profile_changes_record(
            workspace_id=customer.workspace_id,
            changes=[(customer.id, keys)],
            source="consent",
            now=now,
        )
    return customer


def combine_consent(winner: dict, loser: dict) -> dict:
    """For a merge: a denial on either profile wins; otherwise an explicit grant is kept."""
    combined = dict(winner)
    for purpose, record in loser.items():
        mine = combined.get(purpose)
        if mine is None or (
            record.get("status") == ConsentStatus.DENIED
            and mine.get("status") != ConsentStatus.DENIED
        ):
            combined[purpose] = record
    return combined


# -- Vendors and the consent string ------------------------------------------------------------
# The `consent` object of a write may also carry `vendors` (destination key → decision) and the
# raw `consent_string` a CMP gave with its `consent_string_version` (kept, never decoded). None of
# these names is a purpose. Keys of profile changes: `consent_vendor:<key>` and `consent_string`.

VENDORS = "vendors"
CONSENT_STRING = "consent_string"
CONSENT_STRING_VERSION = "consent_string_version"
CONSENT_EXTRAS = (VENDORS, CONSENT_STRING, CONSENT_STRING_VERSION)
CONSENT_COLUMNS = ("consent", "consent_vendors", "consent_string", "consent_string_version")
VENDOR_KEY = re.compile(r"[a-z0-9_-]{1,64}")
VENDOR_KEY_RULE = "a vendor key is 1 to 64 characters of a-z, 0-9, _ and -"
MAX_VENDORS = 200
MAX_CONSENT_STRING_LENGTH = 10_000
MAX_CONSENT_STRING_VERSION_LENGTH = 20
CONSENT_STRING_KEY = "consent_string"


def consent_vendor_key(vendor: str) -> str:
    """The profile-change key of a vendor decision."""
    return f"consent_vendor:{vendor}"


@dataclass(frozen=True)
class ConsentInput:
    """A checked `consent` object. `consent_string` is None when not given, ("", "") to clear
    the string and its version, else (string, version)."""

    purposes: dict[str, str | None]
    vendors: dict[str, str | None]
    consent_string: tuple[str, str] | None


def clean_consent_input(changes) -> ConsentInput:
    """Check a `consent` object: purposes as `clean_consent_changes` has them, plus the extras.
    Errors name the field (`consent.vendors.meta`, `consent.consent_string_version`)."""
    if not isinstance(changes, dict):
        clean_consent_changes(changes)  # raises: the purposes' message, as before
    purposes = {key: value for key, value in changes.items() if key not in CONSENT_EXTRAS}
    return ConsentInput(
        purposes=clean_consent_changes(purposes),
        vendors=clean_vendor_changes(changes[VENDORS]) if VENDORS in changes else {},
        consent_string=clean_consent_string(changes),
    )


def _decision(value, *, field: str, reason: str) -> str | None:
    if isinstance(value, bool):
        return GRANTED if value else DENIED
    if value not in (GRANTED, DENIED, None):
        raise InvalidInput(reason, field=field)
    return value


def clean_vendor_changes(vendors) -> dict[str, str | None]:
    """Vendor (destination key) → granted | denied | None; true and false as for purposes."""
    if not isinstance(vendors, dict):
        raise InvalidInput(
            "must be an object of vendor key → granted | denied | null", field="consent.vendors"
        )
    if len(vendors) > MAX_VENDORS:
        raise InvalidInput(f"at most {MAX_VENDORS} vendors", field="consent.vendors")
    cleaned = {}
    for vendor, status in vendors.items():
        name = f"consent.vendors.{strip_nul(str(vendor))[:100]}"
        if not isinstance(vendor, str) or not VENDOR_KEY.fullmatch(vendor):
            raise InvalidInput(VENDOR_KEY_RULE, field=name)
        cleaned[vendor] = _decision(status, field=name, reason="granted, denied or null")
    return cleaned


def _bounded_text(value, *, field: str, limit: int) -> str:
    """A string, without NULs or surrounding blanks, of at most `limit` characters."""
    reason = f"a string of at most {limit:,} characters, or null"
    if not isinstance(value, str):
        raise InvalidInput(reason, field=field)
    value = strip_nul(value).strip()
    if len(value) > limit:
        raise InvalidInput(reason, field=field)
    return value


def clean_consent_string(changes: dict) -> tuple[str, str] | None:
    """(string, version) from a `consent` object; ("", "") clears both; None: not given.

    The version is required with a string and refused without one: a string is only
    readable with its version, and a version alone describes nothing.
    """
    version_field = f"consent.{CONSENT_STRING_VERSION}"
    if CONSENT_STRING not in changes:
        if changes.get(CONSENT_STRING_VERSION) is not None:
            raise InvalidInput("only with a consent_string", field=version_field)
        return None
    string = changes[CONSENT_STRING]
    if string is not None:
        string = _bounded_text(
            string, field=f"consent.{CONSENT_STRING}", limit=MAX_CONSENT_STRING_LENGTH
        )
    version = changes.get(CONSENT_STRING_VERSION)
    if version is not None:
        version = _bounded_text(
            version, field=version_field, limit=MAX_CONSENT_STRING_VERSION_LENGTH
        )
    if not string:
        if version:
            raise InvalidInput("only with a consent_string (null clears both)", field=version_field)
        return ("", "")
    if not version:
        raise InvalidInput("required with a consent_string (e.g. tcf2.2)", field=version_field)
    return (string, version)


def _history(customer: Customer, *, source: str, now: datetime, **values) -> ConsentChange:
    return ConsentChange(
        workspace_id=customer.workspace_id,
        customer=customer,
        source=source,
        changed_at=now,
        **values,
    )


def _record_purposes(customer: Customer, purposes: dict, *, source: str, now: datetime) -> list:
    """Apply purpose decisions to `customer`: [(history row, profile-change key)]."""
    recorded = []
    for purpose, status in purposes.items():
        if consent_status(customer, purpose) == status:
            continue
        if status is None:
            customer.consent.pop(purpose, None)
        else:
            customer.consent[purpose] = {"status": status, "at": now.isoformat(), "source": source}
        change = _history(customer, purpose=purpose, status=status, source=source, now=now)
        recorded.append((change, f"consent:{purpose}"))
    return recorded


def _record_vendors(customer: Customer, vendors: dict, *, source: str, now: datetime) -> list:
    """Apply vendor decisions to `customer`: [(history row, profile-change key)]."""
    recorded = []
    for vendor, status in vendors.items():
        if recorded_consent_status(customer.consent_vendors, vendor) == status:
            continue
        if status is None:
            customer.consent_vendors.pop(vendor, None)
        else:
            customer.consent_vendors[vendor] = {
                "status": status,
                "at": now.isoformat(),
                "source": source,
            }
        change = _history(
            customer,
            purpose=ConsentChange.VENDOR,
            vendor=vendor,
            status=status,
            source=source,
            now=now,
        )
        recorded.append((change, consent_vendor_key(vendor)))
    if len(customer.consent_vendors) > MAX_VENDORS:
        raise InvalidInput(f"at most {MAX_VENDORS} vendors per customer", field="consent.vendors")
    return recorded


def _record_consent_string(
    customer: Customer, given: tuple[str, str] | None, *, source: str, now: datetime
) -> list:
    """Store or clear the consent string: [(history row, profile-change key)] or []."""
    if given is None or given == (customer.consent_string, customer.consent_string_version):
        return []
    customer.consent_string, customer.consent_string_version = given
    change = _history(
        customer,
        purpose=ConsentChange.CONSENT_STRING,
        consent_string_version=given[1],
        status=None,
        source=source,
        now=now,
    )
    return [(change, CONSENT_STRING_KEY)]


def combine_consent_string(winner: Customer, loser: Customer) -> tuple[str, str]:
    """For a merge: the winner's string and version, unless it has none."""
    if winner.consent_string:
        return winner.consent_string, winner.consent_string_version
    return loser.consent_string, loser.consent_string_version


def consent_history_of(customer: Customer, kind: str, *, limit: int = 100) -> list:
    """Newest first, one kind of history: `purposes`, `vendor` or `consent_string`."""
    rows = ConsentChange.objects.filter(customer_id=customer.id)
    if kind == "purposes":
        rows = rows.filter(purpose__in=ConsentPurpose.values)
    else:
        rows = rows.filter(purpose=kind)
    return list(rows.order_by("-changed_at", "-id")[:limit])
