"""Reads on customers and events (the workspace in context)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncHour
from django.forms.models import model_to_dict
from django.utils import timezone

import profiles.lookups  # noqa: F401 (registers the prefix lookups)
from profiles.models import (
    ConsentChange,
    Customer,
    CustomerImport,
    CustomerMerge,
    Device,
    Event,
    Identity,
)


def customers_list(
    *,
    email: str | None = None,
    external_id: str | None = None,
    updated_since: datetime | None = None,
    search: str | None = None,
) -> QuerySet[Customer]:
    customers = Customer.objects.all()
    if email:
        customers = customers.filter(email=email.strip().lower())
    if external_id:
        customers = customers.filter(external_id=external_id)
    if updated_since:
        customers = customers.filter(updated_at__gte=updated_since)
    if search:
        term = search.strip()
        # Each arm matches one index. starts_with(), not LIKE: under row-level security only
        # leakproof functions reach index scans (profiles.lookups). Emails are stored lower-case.
        customers = customers.filter(
            Q(email__prefix=term.lower())
            | Q(external_id=term)
            | Q(phone__prefix=term)
            | Q(first_name_upper__upper_prefix=term)
            | Q(last_name_upper__upper_prefix=term)
        )
    return customers


def customer_events(*, customer: Customer) -> QuerySet[Event]:
    return Event.objects.filter(customer_id=customer.id)


def events_list(*, name: str | None = None, since: datetime | None = None) -> QuerySet[Event]:
    events = Event.objects.all()
    if name:
        events = events.filter(name=name)
    if since:
        events = events.filter(occurred_at__gte=since)
    return events


def customer_identities(*, customer: Customer) -> QuerySet[Identity]:
    return Identity.objects.filter(customer_id=customer.id).order_by("kind", "created_at", "id")


def customer_devices(*, customer: Customer) -> QuerySet[Device]:
    """Most recently updated first."""
    return Device.objects.filter(customer_id=customer.id).order_by("-updated_at", "-id")


def customer_imports_list() -> QuerySet[CustomerImport]:
    """The workspace's customer imports, newest first."""
    return CustomerImport.objects.order_by("-created_at", "-id")


def consent_history(*, customer: Customer, limit: int = 100) -> list[ConsentChange]:
    return list(
        ConsentChange.objects.filter(customer_id=customer.id).order_by("-changed_at", "-id")[:limit]
    )


def _plain(row: dict) -> dict:
    return {
        key: (value.isoformat() if hasattr(value, "isoformat") else value)
        for key, value in row.items()
    }


def customer_export(*, customer: Customer) -> dict:
    """Everything Masivo holds about one customer (data portability)."""
    profile = _plain(model_to_dict(customer, exclude=["workspace"]))
    profile["purchase_total"] = str(customer.purchase_total)
    for name in ("purchases_30d_total", "purchases_month_total"):
        profile[name] = str(getattr(customer, name))
    return {
        "profile": profile | {"id": customer.id, "created_at": customer.created_at.isoformat()},
        "identities": [
            _plain(row)
            for row in Identity.objects.filter(customer_id=customer.id).values(
                "kind", "value", "created_at"
            )
        ],
        "devices": [
            _plain(row)
            for row in Device.objects.filter(customer_id=customer.id).values(
                "token", "platform", "model", "os_version", "created_at", "expires_at"
            )
        ],
        "consent_history": [
            _plain(row)
            for row in ConsentChange.objects.filter(customer_id=customer.id).values(
                "purpose", "vendor", "consent_string_version", "status", "source", "changed_at"
            )
        ],
        "merges": [
            _plain(row)
            for row in CustomerMerge.objects.filter(winner_id=customer.id).values(
                "loser_id", "reason", "merged_at"
            )
        ],
        "events": [
            _plain(row)
            for row in Event.objects.filter(customer_id=customer.id)
            .order_by("occurred_at", "id")
            .values("type", "name", "properties", "occurred_at", "message_id", "context")
            .iterator(chunk_size=2000)
        ],
    }


def customer_ids_by(*, identifier: str, values: list[str]) -> dict[str, int]:
    """value → id of the customer (in the workspace in context) whose `identifier` it is.

    `identifier` is external_id or email (both unique in a workspace); values not found are
    left out. Emails are stored lower-case, so they are matched lower-cased.
    """
    if identifier not in ("external_id", "email"):
        raise ValueError(f"customers are not looked up by {identifier}")
    if identifier == "email":
        values = [value.strip().lower() for value in values]
    return dict(
        Customer.objects.filter(**{f"{identifier}__in": values}).values_list(identifier, "id")
    )


def customers_count() -> int:
    return Customer.objects.count()


def events_received_by_hour(*, since: datetime) -> dict[datetime, int]:
    """Events received since `since`, counted per hour of the current time zone."""
    rows = (
        Event.objects.filter(received_at__gte=since)
        .annotate(hour=TruncHour("received_at", tzinfo=timezone.get_current_timezone()))
        .values("hour")
        .annotate(count=Count("id"))
        .values_list("hour", "count")
    )
    return dict(rows)


def oldest_unprocessed_event_received_at() -> datetime | None:
    """When the oldest event still waiting for the ingestion follow-up arrived (the lag's
    start); None when every event is processed. Reads the partial index event_ws_unprocessed."""
    return (
        Event.objects.filter(processed_at__isnull=True)
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )
