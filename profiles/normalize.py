"""Validation and normalization of profile fields and free-form JSON, shared by every way in.

Each function returns the clean value or raises `InvalidInput` naming the field. Documented
normalizations (docs/api.md, "Bad input"): emails are trimmed and lower-cased; phones become
E.164; countries upper-case ISO alpha-2; NUL characters are removed from every string (Postgres
cannot store them) and lone surrogates become U+FFFD; tag keys are trimmed.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from functools import cache
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from masivo.tenancy.errors import InvalidInput

MAX_JSON_DEPTH = 10
MAX_KEY_LENGTH = 255
MAX_TAGS = 200
MAX_TAG_VALUE_LENGTH = 500
MAX_EMAIL_LENGTH = 254  # the column's length (RFC 5321's limit for a path)
MAX_LOCALE_LENGTH = 35  # the column's length
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@cache
def _countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, as libphonenumber knows them (every country with a phone plan)."""
    regions = set()
    for codes in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.values():
        regions.update(code for code in codes if len(code) == 2 and code != "001")
    return frozenset(regions)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def strip_nul(value: str) -> str:
    """Without NULs, and with lone surrogates (from JSON escapes like "\\ud800") replaced by
    U+FFFD: Postgres can store neither, and UTF-8 cannot encode the second."""
    value = value.replace("\x00", "")
    return value if value.isascii() else _LONE_SURROGATE.sub("\ufffd", value)


def unstorable_reason(value: str) -> str | None:
    """Why `value` cannot be stored as it is, for inputs refused rather than cleaned (a query
    parameter, an audience rule): None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii() and _LONE_SURROGATE.search(value):
        return "contains a lone surrogate (not valid Unicode)"
    return None


def _clean_text(value: str) -> str:
    return value if "\x00" not in value and value.isascii() else strip_nul(value)


def clean_json(value: Any, *, field: str, depth: int = 0) -> Any:
    """Free-form JSON as Postgres can store it: no NULs, bounded depth, string keys.

    The tracking API runs this over every stored object of every message, so the common
    leaves (text, integers, booleans, null) are handled in their container's loop instead of
    a call each; the result is what the plain recursive definition gives."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidInput(f"nested deeper than {MAX_JSON_DEPTH} levels", field=field)
    kind = type(value)
    if kind is str:
        return _clean_text(value)
    if kind is dict or isinstance(value, dict):
        return _clean_dict(value, field, depth)
    if kind is list or isinstance(value, list):
        return _clean_list(value, field, depth)
    if isinstance(value, str):
        return strip_nul(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("numbers must be finite", field=field)
    return value


def _clean_dict(value: dict, field: str, depth: int) -> dict:
    cleaned = {}
    deepest = depth + 1 > MAX_JSON_DEPTH
    for key, item in value.items():
        key = _clean_text(key) if type(key) is str else strip_nul(str(key))
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(f"a key is longer than {MAX_KEY_LENGTH} characters", field=field)
        kind = type(item)
        if deepest:
            clean_json(item, field=f"{field}.{key}", depth=depth + 1)  # raises
        if kind is str:
            cleaned[key] = _clean_text(item)
        elif kind is int or kind is bool or item is None:
            cleaned[key] = item
        else:
            cleaned[key] = clean_json(item, field=f"{field}.{key}", depth=depth + 1)
    return cleaned


def _clean_list(value: list, field: str, depth: int) -> list:
    cleaned = []
    deepest = depth + 1 > MAX_JSON_DEPTH
    for index, item in enumerate(value):
        kind = type(item)
        if deepest:
            clean_json(item, field=f"{field}[{index}]", depth=depth + 1)  # raises
        if kind is str:
            cleaned.append(_clean_text(item))
        elif kind is int or kind is bool or item is None:
            cleaned.append(item)
        else:
            cleaned.append(clean_json(item, field=f"{field}[{index}]", depth=depth + 1))
    return cleaned


def clean_object(value: Any, *, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("must be a JSON object", field=field)
    return clean_json(value, field=field)


def clean_email(value: Any, *, field: str = "email") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=field)
    email = strip_nul(value).strip().lower()
    try:
        validate_email(email)
    except ValidationError as error:
        raise InvalidInput(f"{value!r} is not a valid email address", field=field) from error
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"longer than {MAX_EMAIL_LENGTH} characters", field=field)
    return email


def clean_phone(value: Any, *, field: str = "phone", country: str | None = None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise InvalidInput("must be a string", field=field)
    text = strip_nul(str(value)).strip()
    try:
        number = phonenumbers.parse(text, country or None)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput(
            f"{text!r} is not a phone number (use E.164, e.g. +525512345678)", field=field
        ) from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"{text!r} is not a valid phone number", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_country(value: Any, *, field: str = "country") -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or value.strip().upper() not in _countries():
        raise InvalidInput(f"{value!r} is not an ISO 3166-1 alpha-2 country code", field=field)
    return value.strip().upper()


def clean_timezone(value: Any, *, field: str = "timezone") -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or value not in _timezones():
        raise InvalidInput(f"{value!r} is not an IANA time zone", field=field)
    return value


def clean_locale(value: Any, *, field: str = "locale") -> str:
    if value in (None, ""):
        return ""
    if (
        not isinstance(value, str)
        or len(value.strip()) > MAX_LOCALE_LENGTH
        or not _LOCALE.match(value.strip())
    ):
        raise InvalidInput(f"{value!r} is not a locale like 'es-MX'", field=field)
    return value.strip().replace("_", "-")


def clean_date(value: Any, *, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD)", field=field)


def clean_text(value: Any, *, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InvalidInput("must be a string", field=field)
    text = strip_nul(str(value)).strip()
    if len(text) > max_length:
        raise InvalidInput(f"longer than {max_length} characters", field=field)
    return text


def clean_tags(value: Any, *, field: str = "tags") -> dict[str, str | int | float | bool]:
    """Tags are a flat map of key → string, number or boolean."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("must be an object of key → string, number or boolean", field=field)
    if len(value) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", field=field)
    tags = {}
    for raw_key, item in value.items():
        key = strip_nul(str(raw_key)).strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(f"tag keys are 1 to {MAX_KEY_LENGTH} characters", field=field)
        if isinstance(item, str):
            item = strip_nul(item)
            if len(item) > MAX_TAG_VALUE_LENGTH:
                raise InvalidInput(f"longer than {MAX_TAG_VALUE_LENGTH}", field=f"{field}.{key}")
        elif item is None or not isinstance(item, bool | int | float):
            raise InvalidInput("must be a string, number or boolean", field=f"{field}.{key}")
        tags[key] = item
    return tags
