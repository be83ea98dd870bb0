"""What a template can read. Plain data only (dicts, lists, text, numbers, dates), built once
per render, so nothing in the sandbox can reach a model, a manager or the database.

Consent-safe: the customer's consent document, identities and devices are left out; a template
sees who the customer is and what they did, never what they agreed to or their other ids."""

from __future__ import annotations

from datetime import datetime

CUSTOMER_FIELDS = (
    "id", "external_id", "email", "phone", "first_name", "last_name", "gender", "birth_date",
    "country", "city", "timezone", "locale", "tier", "status", "created_at", "last_seen_at",
)  # fmt: skip
CUSTOMER_METRICS = (
    "purchase_count", "purchase_total", "last_purchase_at", "purchases_30d_count",
    "purchases_30d_total", "purchases_month_count", "purchases_month_total",
)  # fmt: skip


def customer_context(customer) -> dict:
    values = {name: getattr(customer, name) for name in CUSTOMER_FIELDS + CUSTOMER_METRICS}
    values["full_name"] = " ".join(
        part for part in (customer.first_name, customer.last_name) if part
    )
    values["traits"] = customer.traits or {}
    values["tags"] = customer.tags or {}
    return values


def render_context(*, customer, workspace, event, links, now: datetime) -> dict:
    return {
        "customer": customer_context(customer),
        "event": dict(event or {}),
        "workspace": {"id": workspace.id, "name": workspace.name, "timezone": workspace.timezone},
        "links": dict(links or {}),
        "now": now,
    }
