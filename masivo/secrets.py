"""Secrets at rest: provider credentials (channel connections now, destinations next), encrypted
with keys from the environment and never shown again once stored.

`MASIVO_SECRET_KEYS` holds one or more Fernet keys, comma-separated, newest first: the first
encrypts, every one decrypts, so a new key is put in front and `manage.py secrets_rotate`
re-encrypts every stored secret with it before the old key is removed (docs/operations.md).
Fernet is authenticated encryption (AES-128-CBC with an HMAC-SHA256): a value altered in the
database, or a key that is not among those configured, is an error, never a garbled secret.

A deployment sets `SECRET_KEY` in the environment; there `MASIVO_SECRET_KEYS` is required, and
its absence is a clear error (a system check at `migrate`, and at the first use in any
process). Without either (`masivo up` on a laptop, the tests), a key derived from the
generated `SECRET_KEY` is used, so development needs no setup.
"""

from __future__ import annotations

import base64
import json
import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction

from masivo.tenancy.context import all_workspaces

ENV_NAME = "MASIVO_SECRET_KEYS"
DEV_KEY_INFO = b"masivo secrets: development key derived from SECRET_KEY"
HINT_LENGTH = 4
ROTATE_BATCH = 500


class SecretDecryptionError(Exception):
    """A stored secret that none of the configured keys opens (altered, or the key is gone)."""


def generate_key() -> str:
    """A new key for `MASIVO_SECRET_KEYS`."""
    return Fernet.generate_key().decode()


def _configured_keys() -> str:
    # A setting first (tests override it), else the environment, read at call time.
    return getattr(settings, ENV_NAME, None) or os.environ.get(ENV_NAME, "")


def keys_are_required() -> bool:
    """A deployment (SECRET_KEY from the environment) must bring its own keys."""
    return bool(os.environ.get("SECRET_KEY"))


def _missing_keys_message() -> str:
    return (
        f"{ENV_NAME} is not set. A deployment (SECRET_KEY in the environment) needs its own "
        'keys to encrypt provider credentials: generate one with `python -c "from '
        'cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"` and set '
        f"{ENV_NAME} to it, the same in every web, worker and beat process "
        "(docs/operations.md, Secret keys)."
    )


@lru_cache(maxsize=8)
def _multifernet(configured: str, secret_key: str, required: bool) -> MultiFernet:
    raw = [item.strip() for item in configured.split(",") if item.strip()]
    if not raw:
        if required:
            raise ImproperlyConfigured(_missing_keys_message())
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DEV_KEY_INFO)
        key = base64.urlsafe_b64encode(derived.derive(secret_key.encode()))
        return MultiFernet([Fernet(key)])
    fernets = []
    for position, item in enumerate(raw, start=1):
        try:
            fernets.append(Fernet(item.encode()))
        except ValueError:
            raise ImproperlyConfigured(
                f"{ENV_NAME}: key {position} of {len(raw)} is not a Fernet key (32 url-safe "
                "base64-encoded bytes, as Fernet.generate_key() makes)"
            ) from None
    return MultiFernet(fernets)


def keyring() -> MultiFernet:
    return _multifernet(_configured_keys(), settings.SECRET_KEY, keys_are_required())


def encrypt(plaintext: str) -> str:
    return keyring().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return keyring().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError):
        raise SecretDecryptionError(
            f"a stored secret cannot be decrypted with any key in {ENV_NAME} (was a key removed "
            "before `manage.py secrets_rotate` ran?)"
        ) from None


def hint(secret: str) -> str:
    """What may be shown of a secret: its last characters, and only when it is long enough
    that they give nothing useful away."""
    return secret[-HINT_LENGTH:] if len(secret) >= 3 * HINT_LENGTH else ""


class EncryptedJSONField(models.TextField):
    """A JSON value stored as one Fernet token. Never filter on it (the ciphertext differs each
    time); None is NULL, and every other value, falsy ones included, is encrypted."""

    description = "JSON encrypted with MASIVO_SECRET_KEYS"

    def from_db_value(self, value, expression, db_connection):
        return None if value is None else json.loads(decrypt(value))

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        return None if value is None else encrypt(json.dumps(value, sort_keys=True))


def encrypted_columns() -> list[tuple[str, str]]:
    """(table, column) of every EncryptedJSONField in every installed model."""
    return [
        (model._meta.db_table, field.column)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedJSONField)
    ]


def secrets_rotate() -> dict[str, int]:
    """Re-encrypt every stored secret with the first key; returns the rows done per table.

    Cross-tenant by nature (it is the operator's command), so it opens the escape hatch. Each
    batch commits on its own and rows are locked while rewritten: running it twice, or while the
    application writes, re-encrypts harmlessly. A row no configured key opens stops it with
    SecretDecryptionError, naming nothing of the secret.
    """
    ring = keyring()
    done: dict[str, int] = {}
    with all_workspaces(reason="secrets_rotate: re-encrypt every workspace's secrets"):
        for table, column in encrypted_columns():
            done[f"{table}.{column}"] = _rotate_column(ring, table, column)
    return done


def _rotate_column(ring: MultiFernet, table: str, column: str) -> int:
    count, last_id = 0, 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f'SELECT id, "{column}" FROM "{table}" WHERE id > %s AND "{column}" IS NOT NULL '  # noqa: S608 (catalog names)
                "ORDER BY id LIMIT %s FOR UPDATE",
                [last_id, ROTATE_BATCH],
            )
            rows = cursor.fetchall()
            for row_id, token in rows:
                try:
                    rotated = ring.rotate(token.encode("ascii")).decode("ascii")
                except InvalidToken:
                    raise SecretDecryptionError(
                        f"{table} row {row_id}: no key in {ENV_NAME} decrypts its {column}"
                    ) from None
                cursor.execute(
                    f'UPDATE "{table}" SET "{column}" = %s WHERE id = %s',  # noqa: S608
                    [rotated, row_id],
                )
        if not rows:
            return count
        count += len(rows)
        last_id = rows[-1][0]


@checks.register(checks.Tags.security)
def check_secret_keys(app_configs=None, **kwargs):
    """Run by `migrate` and `check`: a deployment without its keys stops before it starts."""
    try:
        _multifernet(_configured_keys(), settings.SECRET_KEY, keys_are_required())
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="masivo.E101")]
    return []
