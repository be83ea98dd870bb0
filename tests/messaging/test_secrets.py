"""masivo.secrets: credentials encrypted at rest with MASIVO_SECRET_KEYS, rotation by
re-encrypting, a clear error when a deployment has no keys."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from masivo import secrets
from masivo.tenancy.context import workspace_scope
from messaging.models import ChannelConnection
from tests.messaging.helpers import SENDGRID_KEY, SENDGRID_VALUES, connect, stored_column

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def _no_keys_from_the_environment(monkeypatch):
    monkeypatch.delenv("MASIVO_SECRET_KEYS", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)


def credentials_of(workspace, connection_id):
    with workspace_scope(workspace.id):
        return ChannelConnection.objects.get(id=connection_id).credentials


def test_credentials_are_stored_encrypted_and_read_back(workspace, settings):
    settings.MASIVO_SECRET_KEYS = OLD_KEY
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)

    stored = stored_column(connection.id)

    assert SENDGRID_KEY not in stored
    assert Fernet(OLD_KEY.encode()).decrypt(stored.encode()) == (
        b'{"api_key": "SG.test-key-id.0123456789abcdefWXYZ"}'
    )
    assert credentials_of(workspace, connection.id) == {"api_key": SENDGRID_KEY}


def test_the_first_key_encrypts_and_every_key_decrypts(workspace, settings):
    settings.MASIVO_SECRET_KEYS = OLD_KEY
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)
    settings.MASIVO_SECRET_KEYS = f"{NEW_KEY}, {OLD_KEY}"

    assert credentials_of(workspace, connection.id) == {"api_key": SENDGRID_KEY}
    assert Fernet(NEW_KEY.encode()).decrypt(secrets.encrypt("x").encode()) == b"x"


def test_rotation_re_encrypts_so_the_old_key_can_go(workspace, other_workspace, settings):
    settings.MASIVO_SECRET_KEYS = OLD_KEY
    first = connect(workspace, "sendgrid", SENDGRID_VALUES)
    second = connect(other_workspace, "sendgrid", SENDGRID_VALUES)
    settings.MASIVO_SECRET_KEYS = f"{NEW_KEY},{OLD_KEY}"

    done = secrets.secrets_rotate()
    settings.MASIVO_SECRET_KEYS = NEW_KEY

    assert done == {
        "messaging_channelconnection.credentials": 2,
        "destinations_destination.credentials": 0,
    }
    assert credentials_of(workspace, first.id) == {"api_key": SENDGRID_KEY}
    assert credentials_of(other_workspace, second.id) == {"api_key": SENDGRID_KEY}
    assert Fernet(NEW_KEY.encode()).decrypt(stored_column(first.id).encode())


def test_without_rotation_removing_the_old_key_is_a_clear_error(workspace, settings):
    settings.MASIVO_SECRET_KEYS = OLD_KEY
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)
    settings.MASIVO_SECRET_KEYS = NEW_KEY

    with pytest.raises(secrets.SecretDecryptionError) as raised:
        credentials_of(workspace, connection.id)

    assert str(raised.value) == (
        "a stored secret cannot be decrypted with any key in MASIVO_SECRET_KEYS (was a key "
        "removed before `manage.py secrets_rotate` ran?)"
    )


def test_the_rotate_command_reports_and_refuses_a_secret_no_key_opens(workspace, settings, capsys):
    settings.MASIVO_SECRET_KEYS = OLD_KEY
    connection = connect(workspace, "sendgrid", SENDGRID_VALUES)
    settings.MASIVO_SECRET_KEYS = f"{NEW_KEY},{OLD_KEY}"

    call_command("secrets_rotate")

    assert capsys.readouterr().out == (
        "messaging_channelconnection.credentials: 1 re-encrypted\n"
        "destinations_destination.credentials: 0 re-encrypted\n"
        "1 secrets re-encrypted\n"
    )
    settings.MASIVO_SECRET_KEYS = Fernet.generate_key().decode()
    with pytest.raises(Exception, match=f"row {connection.id}: no key in MASIVO_SECRET_KEYS"):
        call_command("secrets_rotate")


def test_an_altered_ciphertext_is_refused_not_returned(settings):
    settings.MASIVO_SECRET_KEYS = OLD_KEY
    token = secrets.encrypt('{"api_key": "x"}')
    altered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]

    with pytest.raises(secrets.SecretDecryptionError):
        secrets.decrypt(altered)


def test_falsy_values_are_encrypted_too():
    field = secrets.EncryptedJSONField()

    stored = field.get_prep_value({})

    assert stored.startswith("gAAAAA")
    assert field.from_db_value(stored, None, None) == {}
    assert field.get_prep_value(None) is None


def test_a_malformed_key_names_its_position(settings):
    settings.MASIVO_SECRET_KEYS = f"{NEW_KEY},not-a-key"

    with pytest.raises(ImproperlyConfigured) as raised:
        secrets.keyring()

    assert str(raised.value) == (
        "MASIVO_SECRET_KEYS: key 2 of 2 is not a Fernet key (32 url-safe base64-encoded "
        "bytes, as Fernet.generate_key() makes)"
    )


def test_a_deployment_without_keys_fails_its_checks_and_first_use(settings, monkeypatch):
    settings.MASIVO_SECRET_KEYS = ""
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")

    [error] = secrets.check_secret_keys()

    assert error.id == "masivo.E101"
    assert error.msg.startswith("MASIVO_SECRET_KEYS is not set. A deployment (SECRET_KEY in")
    with pytest.raises(ImproperlyConfigured):
        secrets.encrypt("x")


def test_development_uses_a_key_derived_from_secret_key(settings):
    settings.MASIVO_SECRET_KEYS = ""
    token = secrets.encrypt("hello")

    assert secrets.check_secret_keys() == []
    assert secrets.decrypt(token) == "hello"
    settings.SECRET_KEY = "another secret key"
    with pytest.raises(secrets.SecretDecryptionError):
        secrets.decrypt(token)


@pytest.mark.parametrize(
    ("secret", "shown"),
    [("SG.abcdefgh.0123456789WXYZ", "WXYZ"), ("short-secret", "cret"), ("eleven-char", "")],
)
def test_only_the_last_characters_of_a_long_enough_secret_are_shown(secret, shown):
    assert secrets.hint(secret) == shown
