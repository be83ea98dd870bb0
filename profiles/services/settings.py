from masivo.tenancy.models import Workspace
from profiles.models import ProfileSettings

DEFAULT_PURCHASE_EVENTS = ["purchase", "Order Completed", "order_completed"]
DEFAULT_PURCHASE_VALUE_PROPERTIES = ["value", "revenue", "total"]


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
