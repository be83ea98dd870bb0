"""Push through Firebase Cloud Messaging: one FCM message per active device of the customer,
sent with `send_each` in chunks (it starts a thread per message).

firebase-admin retries 500/503 by itself; its urllib3 would also sleep out a 429's
`Retry-After` in the worker's threads, so that is turned off here and the pipeline schedules
the retry instead. A device FCM calls UNREGISTERED (or an invalid token) is disabled; the
message counts as sent when any device took it, and fails only when every device refused.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

from firebase_admin import exceptions, messaging
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from messaging.channels.push import firebase_app
from messaging.sending.config import int_setting, setting
from messaging.sending.outcomes import Failed, Outcome, RetryLater, Sent, Unknown
from messaging.sending.retry import never_reached, seconds_header
from messaging.sending.senders.base import Prepared, Sender
from profiles.models import Device
from profiles.services.devices import devices_disable

MESSAGE_ID_KEY = "masivo_message_id"
DEDUPE_KEY_KEY = "masivo_dedupe_key"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_RETRYABLE = (
    messaging.QuotaExceededError,
    exceptions.UnavailableError,
    exceptions.InternalError,
    exceptions.UnknownError,
    exceptions.ResourceExhaustedError,
)


def _has_fcm_error_detail(error: exceptions.FirebaseError) -> bool:
    """An INVALID_ARGUMENT about the token (an FcmError detail), not about the payload."""
    response = error.http_response
    if response is None:
        return False
    try:
        details = json.loads(response.content or b"{}").get("error", {}).get("details", [])
    except (ValueError, AttributeError):
        return False
    return any(isinstance(item, dict) and item.get("@type") == FCM_ERROR_TYPE for item in details)


def _retry_after(error: exceptions.FirebaseError) -> float | None:
    response = error.http_response
    return seconds_header(response.headers.get("Retry-After")) if response is not None else None


class FcmSender(Sender):
    provider = "fcm"

    def load(self, messages: list) -> None:
        self.devices: dict[int, list[tuple[int, str]]] = {}
        for device_id, customer_id, token in (
            Device.objects.filter(
                customer_id__in={message.customer_id for message in messages},
                push_enabled=True,
                expires_at__gt=self.now,
            )
            .order_by("id")
            .values_list("id", "customer_id", "token")
        ):
            self.devices.setdefault(customer_id, []).append((device_id, token))
        self.unregistered: set[int] = set()
        self._stack = ExitStack()
        self._app = None

    @property
    def app(self):
        if self._app is None:
            account = self.connection.credentials["service_account"]
            project_id = self.connection.settings.get("project_id") or account["project_id"]
            self._app = self._stack.enter_context(firebase_app(account, project_id))
            # Private attribute of firebase-admin 7.7.0 (pinned): its session's retry policy.
            session = messaging._get_messaging_service(self._app)._client.session
            retry = Retry(
                connect=1,
                read=0,  # a read error may follow a delivered request: never repeat it
                status=4,
                status_forcelist=[500, 503],
                backoff_factor=setting("MASIVO_FCM_RETRY_BACKOFF"),
                respect_retry_after_header=False,
                raise_on_status=False,
                allowed_methods=None,
            )
            size = int_setting("MASIVO_FCM_CHUNK")
            for prefix in ("http://", "https://", "https://fcm.googleapis.com"):
                session.mount(
                    prefix, HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=size)
                )
        return self._app

    def prepare(self, message, rendered) -> Prepared | Failed:
        devices = self.devices.get(message.customer_id, [])
        if not devices:
            return Failed("no_device", "the customer has no active push device")
        fields = rendered.fields
        data = {str(key): str(value) for key, value in (fields.get("data") or {}).items()}
        if fields.get("deep_link"):
            data["deep_link"] = str(fields["deep_link"])
        data[MESSAGE_ID_KEY] = str(message.id)
        data[DEDUPE_KEY_KEY] = message.dedupe_key
        notification = messaging.Notification(
            title=fields.get("title") or None,
            body=fields.get("body") or None,
            image=fields.get("image") or None,
        )
        requests = [
            (device_id, messaging.Message(fid=token, notification=notification, data=data))
            for device_id, token in devices
        ]
        payload = {
            "title": fields.get("title") or "",
            "body": fields.get("body") or "",
            "image": fields.get("image") or "",
            "deep_link": fields.get("deep_link") or "",
            "data": fields.get("data") or {},
            "devices": len(devices),
        }
        return Prepared(message=message, payload=payload, request=requests)

    def send(self, items: list[Prepared]) -> dict[int, Outcome]:
        flat = [
            (item.message.id, device_id, fcm) for item in items for device_id, fcm in item.request
        ]
        answers: dict[int, list] = {item.message.id: [] for item in items}
        size = min(int_setting("MASIVO_FCM_CHUNK"), 500)
        for start in range(0, len(flat), size):
            chunk = flat[start : start + size]
            try:
                batch = messaging.send_each([fcm for _, _, fcm in chunk], app=self.app)
                responses = [(r.message_id, r.exception) for r in batch.responses]
            except exceptions.FirebaseError as error:
                responses = [(None, error)] * len(chunk)
            for (message_id, device_id, _), (fcm_id, error) in zip(chunk, responses, strict=True):
                answers[message_id].append((device_id, fcm_id, error))
        return {message_id: self._outcome(found) for message_id, found in answers.items()}

    def _outcome(self, answers: list) -> Outcome:
        for device_id, _, error in answers:
            if isinstance(error, messaging.UnregisteredError) or (
                isinstance(error, exceptions.InvalidArgumentError) and _has_fcm_error_detail(error)
            ):
                self.unregistered.add(device_id)
        accepted = [fcm_id for _, fcm_id, error in answers if error is None]
        if accepted:
            return Sent(
                provider_message_id=accepted[0],
                detail=f"FCM accepted it for {len(accepted)} of {len(answers)} devices",
            )
        errors = [error for _, _, error in answers]
        lost = [e for e in errors if e.http_response is None and not never_reached(e.cause)]
        if lost and not any(isinstance(error, messaging.UnregisteredError) for error in errors):
            return Unknown("connection_lost", f"the connection to FCM broke: {lost[0]}")
        retryable = [error for error in errors if isinstance(error, _RETRYABLE)]
        if retryable:
            waits = [w for w in (_retry_after(error) for error in retryable) if w is not None]
            first = retryable[0]
            return RetryLater(
                "rate_limited"
                if isinstance(first, messaging.QuotaExceededError)
                else "provider_unavailable",
                f"FCM answered {first.code}: {first}",
                after_seconds=max(waits) if waits else None,
            )
        if isinstance(errors[0], exceptions.DeadlineExceededError):
            return Unknown("timeout", f"FCM did not answer in time: {errors[0]}")
        if all(device_id in self.unregistered for device_id, _, _ in answers):
            return Failed("unregistered", "FCM no longer knows any of the customer's devices")
        first = errors[0]
        if isinstance(first, exceptions.InvalidArgumentError):
            return Failed("invalid_argument", f"FCM refused the message: {first}")
        if isinstance(first, exceptions.UnauthenticatedError | exceptions.PermissionDeniedError):
            return Failed("unauthorized", f"FCM refused the credentials: {first}")
        return Failed(f"fcm_{first.code}".lower()[:64], f"FCM refused it: {first}")

    def after_send(self) -> None:
        if self.unregistered:
            devices_disable(device_ids=sorted(self.unregistered), now=self.now)
            self.unregistered = set()

    def close(self) -> None:
        super().close()
        if hasattr(self, "_stack"):
            self._stack.close()
