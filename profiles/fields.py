"""The profile's typed fields: what each accepts, and how Segment trait names map onto them."""

from __future__ import annotations

from typing import Any

from masivo.tenancy.errors import InvalidInput
from profiles import normalize as n
from profiles.models import Customer


def _choice(choices, *, cleared=""):
    def clean(value, *, field):
        if value in (None, ""):
            return cleared
        if value not in choices:
            raise InvalidInput(f"one of {', '.join(choices)}", field=field)
        return value

    return clean


def _text(max_length):
    def clean(value, *, field):
        return n.clean_text(value, field=field, max_length=max_length)

    return clean


def _external_id(value, *, field):
    if value in (None, ""):
        return None
    text = n.clean_text(value, field=field, max_length=255)
    return text or None


PROFILE_FIELDS = {
    "external_id": _external_id,
    "email": lambda value, field: n.clean_email(value, field=field),
    "phone": lambda value, field: n.clean_phone(value, field=field),
    "first_name": _text(100),
    "last_name": _text(100),
    "gender": _choice(Customer.Gender.values),
    "birth_date": lambda value, field: n.clean_date(value, field=field),
    "country": lambda value, field: n.clean_country(value, field=field),
    "city": _text(100),
    "timezone": lambda value, field: n.clean_timezone(value, field=field),
    "locale": lambda value, field: n.clean_locale(value, field=field),
    "tier": _text(50),
    # A status is never blank: cleared, it is the default again.
    "status": _choice(Customer.Status.values, cleared=Customer.Status.ACTIVE),
}

# Segment's reserved identify traits (spec: "Identify > Traits") → profile fields.
SEGMENT_TRAITS = {
    "email": "email",
    "phone": "phone",
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "gender": "gender",
    "birthday": "birth_date",
    "tier": "tier",
    "timezone": "timezone",
    "locale": "locale",
}


def clean_profile_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Validate the typed fields present in `data` (others are left to the caller)."""
    return {
        name: PROFILE_FIELDS[name](value, field=name)
        for name, value in data.items()
        if name in PROFILE_FIELDS
    }


def split_segment_traits(traits: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list]:
    """Identify traits → (profile fields, remaining traits, problems).

    A reserved trait with a bad value (an invalid email, say) is kept as a plain trait and
    reported, so one bad trait never costs the rest of the event.
    """
    fields, rest, problems = {}, {}, []
    for key, value in traits.items():
        if key == "name" and isinstance(value, str) and value.strip():
            first, _, last = value.strip().partition(" ")
            fields.setdefault("first_name", first[:100])
            fields.setdefault("last_name", last[:100])
            continue
        if key == "address" and isinstance(value, dict):
            for part, field in (("country", "country"), ("city", "city")):
                if value.get(part):
                    candidate = value[part]
                    try:
                        fields[field] = PROFILE_FIELDS[field](
                            candidate, field=f"traits.address.{part}"
                        )
                    except InvalidInput as problem:
                        problems.append(problem)
            rest[key] = value
            continue
        field = SEGMENT_TRAITS.get(key)
        if field is None:
            rest[key] = value
            continue
        if key == "gender" and isinstance(value, str):
            value = value.strip().lower()
            if value not in Customer.Gender.values:
                rest[key] = value
                continue
        try:
            fields[field] = PROFILE_FIELDS[field](value, field=f"traits.{key}")
        except InvalidInput as problem:
            problems.append(problem)
            rest[key] = value
    return fields, rest, problems
