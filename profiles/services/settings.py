from django.db import transaction

from masivo.tenancy.errors import InvalidInput
from masivo.tenancy.models import Workspace
from profiles.models import ProfileSettings

DEFAULT_PURCHASE_EVENTS = ["purchase", "Order Completed", "order_completed"]
DEFAULT_PURCHASE_VALUE_PROPERTIES = ["value", "revenue", "total"]
EDITABLE = (
    "consent_regime",
    "vendor_consent_required",
    "purchase_event_names",
    "purchase_value_properties",
    "device_token_ttl_days",
    "max_identities_per_customer",
    "event_retention_days",
)


def profile_settings_get(*, workspace: Workspace) -> ProfileSettings:
    """The workspace's settings row, created with defaults on first use (race-safe)."""
    settings, _ = ProfileSettings.objects.get_or_create(
        workspace=workspace,
        defaults={
            "purchase_event_names": DEFAULT_PURCHASE_EVENTS,
            "purchase_value_properties": DEFAULT_PURCHASE_VALUE_PROPERTIES,
        },
    )
    return settings


@transaction.atomic
def profile_settings_update(*, workspace: Workspace, changes: dict) -> ProfileSettings:
    """Change some settings (values already validated by the caller's serializer or form).

    The row is locked while it changes, so two edits of different settings both stick.
    """
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"{unknown[0]} is not a setting", field=unknown[0])
    profile_settings_get(workspace=workspace)
    settings = ProfileSettings.objects.select_for_update().get(workspace=workspace)
    for name, value in changes.items():
        setattr(settings, name, value)
    if changes:
        settings.save(update_fields=list(changes))
    return settings
