"""Consent: the one place that answers "may we contact this customer for purpose P?"."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from masivo.tenancy.errors import InvalidInput
from profiles.changes import profile_changes_record
from profiles.models import ConsentChange, ConsentPurpose, ConsentStatus, Customer, ProfileSettings

NOT_RECORDED = None


def consent_status(customer: Customer, purpose: str) -> str | None:
    return (customer.consent.get(purpose) or {}).get("status")


def may_contact(customer: Customer, purpose: str, *, settings: ProfileSettings) -> bool:
    """Granted → yes; denied → no; not recorded → the workspace's regime decides."""
    if purpose not in ConsentPurpose.values:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    status = consent_status(customer, purpose)
    if status == ConsentStatus.GRANTED:
        return True
    if status == ConsentStatus.DENIED:
        return False
    return settings.consent_regime == ProfileSettings.ConsentRegime.OPT_OUT


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
