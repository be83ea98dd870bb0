"""What a profile condition can address: typed columns, tags, traits and metrics."""

from __future__ import annotations

from dataclasses import dataclass

TEXT, NUMBER, DATE, DATETIME, BOOLEAN, JSON = (
    "text",
    "number",
    "date",
    "datetime",
    "boolean",
    "json",
)

# name → (column, type). Metrics are addressed as metrics.<name>.
PROFILE_COLUMNS: dict[str, tuple[str, str]] = {
    "external_id": ("external_id", TEXT),
    "email": ("email", TEXT),
    "phone": ("phone", TEXT),
    "first_name": ("first_name", TEXT),
    "last_name": ("last_name", TEXT),
    "gender": ("gender", TEXT),
    "birth_date": ("birth_date", DATE),
    "country": ("country", TEXT),
    "city": ("city", TEXT),
    "timezone": ("timezone", TEXT),
    "locale": ("locale", TEXT),
    "tier": ("tier", TEXT),
    "status": ("status", TEXT),
    "created_at": ("created_at", DATETIME),
    "updated_at": ("updated_at", DATETIME),
    "last_seen_at": ("last_seen_at", DATETIME),
}
METRIC_COLUMNS: dict[str, tuple[str, str]] = {
    "purchase_count": ("purchase_count", NUMBER),
    "purchase_total": ("purchase_total", NUMBER),
    "last_purchase_at": ("last_purchase_at", DATETIME),
    "purchases_30d_count": ("purchases_30d_count", NUMBER),
    "purchases_30d_total": ("purchases_30d_total", NUMBER),
    "purchases_month_count": ("purchases_month_count", NUMBER),
    "purchases_month_total": ("purchases_month_total", NUMBER),
}


@dataclass(frozen=True)
class FieldRef:
    """A resolved field: a typed column, or a path inside the tags/traits JSON."""

    name: str
    column: str
    type: str
    path: tuple[str, ...] = ()

    @property
    def is_json(self) -> bool:
        return self.type == JSON


def resolve_field(name: str) -> FieldRef | None:
    if name in PROFILE_COLUMNS:
        column, kind = PROFILE_COLUMNS[name]
        return FieldRef(name, column, kind)
    prefix, _, rest = name.partition(".")
    if prefix == "metrics" and rest in METRIC_COLUMNS:
        column, kind = METRIC_COLUMNS[rest]
        return FieldRef(name, column, kind)
    if prefix == "tags" and rest:
        return FieldRef(name, "tags", JSON, (rest,))
    if prefix == "traits" and rest and all(rest.split(".")):
        return FieldRef(name, "traits", JSON, tuple(rest.split(".")))
    return None
