"""Push devices, and the customer tokens that let an app holding only the write key register one."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core import signing
from django.db import transaction
from django.utils import timezone

from masivo.tenancy.context import require_workspace_id
from masivo.tenancy.errors import InvalidInput
from profiles import normalize
from profiles.changes import DEVICE, profile_changes_record
from profiles.models import Customer, Device
from profiles.services.settings import profile_settings_get

CUSTOMER_TOKEN_MAX_AGE = timedelta(hours=1)
_TOKEN_SALT = "masivo.profiles.customer-token"  # noqa: S105 (a namespace, not a secret)


def customer_token_issue(*, customer: Customer) -> str:
    """A signed token naming one customer of one workspace, for an app holding the write key."""
    return signing.dumps({"w": customer.workspace_id, "c": customer.id}, salt=_TOKEN_SALT)


def customer_token_verify(*, token: str, workspace_id: int) -> int | None:
    """The customer id a token names, or None if it is forged, expired or for another workspace."""
    try:
        payload = signing.loads(
            token, salt=_TOKEN_SALT, max_age=CUSTOMER_TOKEN_MAX_AGE.total_seconds()
        )
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("w") != workspace_id:
        return None
    return payload.get("c")


def clean_device_input(data) -> dict:
    if not isinstance(data, dict):
        raise InvalidInput("must be a JSON object")
    token = data.get("device_token")
    if not isinstance(token, str) or not token.strip():
        raise InvalidInput("a non-empty string is required", field="device_token")
    token = normalize.strip_nul(token).strip()
    if len(token) > 4096:
        raise InvalidInput("longer than 4096 characters", field="device_token")
    info = data.get("device_info")
    if not isinstance(info, dict):
        raise InvalidInput("an object with platform, model and osVersion", field="device_info")
    platform = info.get("platform")
    if platform not in Device.Platform.values:
        raise InvalidInput("one of android, ios, web", field="device_info.platform")
    return {
        "token": token,
        "platform": platform,
        "model": normalize.clean_text(info.get("model"), field="device_info.model", max_length=100),
        "os_version": normalize.clean_text(
            info.get("osVersion"), field="device_info.osVersion", max_length=50
        ),
    }


@transaction.atomic
def device_register(*, customer: Customer, data, now: datetime | None = None) -> Device:
    """Upsert by token. A token registered to another customer moves to this one."""
    now = now or timezone.now()
    device = clean_device_input(data)
    ttl = timedelta(days=profile_settings_get(workspace=customer.workspace).device_token_ttl_days)
    previous_owner = (
        Device.objects.filter(token=device["token"]).values_list("customer_id", flat=True).first()
    )
    registered, _ = Device.objects.update_or_create(
        workspace_id=customer.workspace_id,
        token=device["token"],
        defaults={
            "customer": customer,
            "platform": device["platform"],
            "model": device["model"],
            "os_version": device["os_version"],
            "push_enabled": True,
            "updated_at": now,
            "expires_at": now + ttl,
        },
        create_defaults={
            "customer": customer,
            "platform": device["platform"],
            "model": device["model"],
            "os_version": device["os_version"],
            "created_at": now,
            "updated_at": now,
            "expires_at": now + ttl,
        },
    )
    owners = {customer.id, previous_owner} - {None}
    profile_changes_record(
        workspace_id=customer.workspace_id,
        changes=[(owner, [DEVICE]) for owner in sorted(owners)],
        source="device",
        now=now,
    )
    return registered


@transaction.atomic
def device_remove(*, customer: Customer, token: str | None) -> int:
    """Remove one device by token, or every device of the customer; returns how many."""
    devices = Device.objects.filter(customer_id=customer.id)
    if token is not None:
        devices = devices.filter(token=token)
    deleted, _ = devices.delete()
    if deleted:
        profile_changes_record(
            workspace_id=customer.workspace_id, changes=[(customer.id, [DEVICE])], source="device"
        )
    return deleted


@transaction.atomic
def devices_disable(*, device_ids: list[int], now: datetime | None = None) -> int:
    """Turn push off for these devices of the current workspace (the provider no longer knows
    their tokens: FCM's UNREGISTERED); returns how many changed. They stay listed, inactive,
    until the app registers the token again."""
    now = now or timezone.now()
    devices = Device.objects.filter(id__in=device_ids, push_enabled=True)
    owners = sorted(set(devices.values_list("customer_id", flat=True)))
    changed = devices.update(push_enabled=False, updated_at=now)
    if changed:
        profile_changes_record(
            workspace_id=require_workspace_id(),
            changes=[(owner, [DEVICE]) for owner in owners],
            source="device",
            now=now,
        )
    return changed
