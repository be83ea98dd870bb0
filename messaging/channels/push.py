"""Push through Firebase Cloud Messaging: a service account's JSON key and the project id.
"Test connection" makes a dry-run send (`validate_only`), which checks the key with Google's
token endpoint and the project with FCM, and delivers nothing.

The service account's own `token_uri` is never used: a key file may name any URL, and the
SDK would post a signed assertion there. `MASIVO_GOOGLE_TOKEN_URL` decides (Google's by
default), and `MASIVO_FCM_API_URL` where sends and topic calls go.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager

import firebase_admin
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from firebase_admin import credentials, exceptions, messaging
from google.auth.exceptions import GoogleAuthError

from masivo.secrets import hint
from messaging.channels.base import (
    Field,
    Provider,
    TestOutcome,
    clean_pattern,
    provider_timeout,
    provider_url,
)

DEFAULT_FCM_URL = "https://fcm.googleapis.com"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
TEST_TOPIC = "masivo-connection-test"
REQUIRED_KEYS = ("project_id", "private_key_id", "private_key", "client_email")


def clean_service_account(value) -> dict:
    """The JSON key file a Firebase project gives (Project settings, Service accounts), as an
    object or as its text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("not valid JSON: paste the whole key file") from None
    if not isinstance(value, dict):
        raise ValueError("must be the service account's JSON key (an object)")
    if value.get("type") != "service_account":
        raise ValueError('not a service account key: "type" must be "service_account"')
    missing = [
        key for key in REQUIRED_KEYS if not isinstance(value.get(key), str) or not value[key]
    ]
    if missing:
        raise ValueError(f"the key file lacks {', '.join(missing)}")
    try:
        load_pem_private_key(value["private_key"].encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("private_key is not a PEM private key") from None
    return {key: item for key, item in value.items() if isinstance(item, str)}


class FcmProvider(Provider):
    name = "fcm"
    label = "Firebase Cloud Messaging"
    channels = ("push",)
    fields = {
        "service_account": Field(
            "Service account JSON key",
            clean_service_account,
            is_required=True,
            is_secret=True,
            help_text="Firebase console: Project settings, Service accounts, Generate new "
            "private key.",
            is_multiline=True,
        ),
        "project_id": Field(
            "Project id",
            clean_pattern(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "a Firebase project id"),
            help_text="Left empty: the project of the service account.",
        ),
    }

    def credential_hints(self, credentials: dict) -> dict[str, str]:
        account = credentials["service_account"]
        return {"service_account": hint(account["private_key_id"])}

    def derived_settings(self, credentials: dict) -> dict:
        return {"client_email": credentials["service_account"]["client_email"]}

    def test(self, *, settings: dict, credentials: dict) -> TestOutcome:
        project_id = settings.get("project_id") or credentials["service_account"]["project_id"]
        try:
            with firebase_app(credentials["service_account"], project_id) as app:
                messaging.send(
                    messaging.Message(topic=TEST_TOPIC, data={"masivo": "connection test"}),
                    dry_run=True,
                    app=app,
                )
        except GoogleAuthError as error:
            return TestOutcome(
                False,
                f"Google refused the service account key ({_auth_reason(error)}): it may have "
                "been deleted; generate a new key in the Firebase console.",
            )
        except exceptions.FirebaseError as error:
            status = error.http_response.status_code if error.http_response is not None else None
            if status in {401, 403, 404}:
                return TestOutcome(
                    False,
                    f"FCM refused project {project_id} ({status} {error.code}): check the "
                    "project id and that the service account belongs to it.",
                )
            return TestOutcome(False, f"FCM answered {status} ({error.code}); try again later.")
        except requests.RequestException as error:
            return TestOutcome(False, f"Could not reach FCM: {error.__class__.__name__}.")
        return TestOutcome(True, f"FCM accepted a test message for project {project_id}.")


@contextmanager
def firebase_app(service_account: dict, project_id: str):
    """A firebase-admin app for one connection, pointed where the settings say, then deleted."""
    certificate = credentials.Certificate(
        {**service_account, "token_uri": provider_url("MASIVO_GOOGLE_TOKEN_URL", DEFAULT_TOKEN_URL)}
    )
    app = firebase_admin.initialize_app(
        certificate,
        {"projectId": project_id, "httpTimeout": provider_timeout()},
        name=f"masivo-{uuid.uuid4().hex}",
    )
    try:
        base_url = provider_url("MASIVO_FCM_API_URL", DEFAULT_FCM_URL).rstrip("/")
        # Private attributes of firebase-admin 7.7.0 (pinned): the SDK has no host option.
        service = messaging._get_messaging_service(app)
        service._fcm_url = f"{base_url}/v1/projects/{project_id}/messages:send"
        service._fcm_topic_url = f"{base_url}/v1/projects/{project_id}/registrations"
        yield app
    finally:
        firebase_admin.delete_app(app)


def _auth_reason(error: GoogleAuthError) -> str:
    # RefreshError carries Google's answer: ("invalid_grant: Invalid JWT Signature.", {...}).
    first = error.args[0] if error.args else error.__class__.__name__
    return str(first).split(":")[0] if isinstance(first, str) else str(first)


PROVIDER = FcmProvider()
