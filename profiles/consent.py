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

from collections.abc import Callable
from datetime import datetime
from types import MappingProxyType

from django.db import transaction
from django.utils import timezone

from masivo.tenancy.errors import InvalidInput
from profiles.changes import profile_changes_record
from profiles.models import ConsentChange, ConsentPurpose, ConsentStatus, Customer, ProfileSettings

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
    """Record decisions (None clears one back to "not recorded"); unchanged ones are no-ops."""
    now = now or timezone.now()
    cleaned = clean_consent_changes(changes)
    customer = Customer.objects.select_for_update().get(id=customer.id)
    history = []
    for purpose, status in cleaned.items():
        if consent_status(customer, purpose) == status:
            continue
        if status is None:
            customer.consent.pop(purpose, None)
        else:
            customer.consent[purpose] = {"status": status, "at": now.isoformat(), "source": source}
        history.append(
            ConsentChange(
                workspace_id=customer.workspace_id,
                customer=customer,
                purpose=purpose,
                status=status,
                source=source,
                changed_at=now,
            )
        )
    if history:
        customer.updated_at = now
        customer.save(update_fields=["consent", "updated_at"])
        ConsentChange.objects.bulk_create(history)
        keys = {f"consent:{change.purpose}" for change in history} | {"field:updated_at"}
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
