"""What every provider of a channel connection declares: its fields (public settings, shown by
the API, and credentials, encrypted and never shown again), how each is checked, and how
"test connection" calls the provider through its real SDK.

Where each SDK sends is configurable (`provider_url`), so tests point the real SDKs at local
fakes (tests/fakes) and nothing is mocked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from masivo.secrets import hint

DEFAULT_TIMEOUT_SECONDS = 10
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def provider_url(name: str, default: str | None) -> str | None:
    """A provider's base URL: the setting `name`, else the environment variable, else default."""
    return getattr(settings, name, None) or os.environ.get(name) or default


def provider_timeout() -> float:
    value = getattr(settings, "MASIVO_PROVIDER_TIMEOUT_SECONDS", None)
    return float(value or os.environ.get("MASIVO_PROVIDER_TIMEOUT_SECONDS") or 10)


@dataclass(frozen=True)
class Field:
    label: str
    clean: Callable[[object], object]
    is_required: bool = False
    is_secret: bool = False
    help_text: str = ""
    is_multiline: bool = False


@dataclass(frozen=True)
class TestOutcome:
    is_ok: bool
    detail: str


class Provider:
    name: str = ""
    label: str = ""
    channels: tuple[str, ...] = ()
    fields: dict[str, Field] = {}

    @property
    def setting_names(self) -> list[str]:
        return [name for name, field in self.fields.items() if not field.is_secret]

    @property
    def credential_names(self) -> list[str]:
        return [name for name, field in self.fields.items() if field.is_secret]

    def check_together(self, settings: dict, credentials: dict) -> tuple[str, str] | None:
        """A rule across fields, on the merged values: (field, message) when broken."""
        return None

    def derived_settings(self, credentials: dict) -> dict:
        """Public facts read from the credentials, shown with the settings."""
        return {}

    def credential_hints(self, credentials: dict) -> dict[str, str]:
        return {name: hint(str(credentials[name])) for name in self.credential_names}

    def test(self, *, settings: dict, credentials: dict) -> TestOutcome:
        raise NotImplementedError


# Cleaners: each takes the raw value and returns the stored one, or raises ValueError with the
# message the API and the form show for that field.


def clean_text(max_length: int) -> Callable[[object], str]:
    def clean(value):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        value = value.strip()
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters")
        return value

    return clean


def clean_token(max_length: int) -> Callable[[object], str]:
    """A key or token: one word, no spaces inside."""

    def clean(value):
        value = clean_text(max_length)(value)
        if any(character.isspace() for character in value):
            raise ValueError("must not contain spaces")
        return value

    return clean


def clean_email(value) -> str:
    value = clean_text(254)(value)
    if value:
        try:
            validate_email(value)
        except ValidationError:
            raise ValueError("not a valid email address") from None
    return value.lower()


def clean_pattern(pattern: str, description: str) -> Callable[[object], str]:
    compiled = re.compile(pattern)

    def clean(value):
        value = clean_text(100)(value)
        if value and not compiled.fullmatch(value):
            raise ValueError(f"must be {description}")
        return value

    return clean


def clean_e164(value) -> str:
    value = clean_text(20)(value)
    if value and not E164.fullmatch(value):
        raise ValueError("must be a phone number in E.164 form, like +5215512345678")
    return value
