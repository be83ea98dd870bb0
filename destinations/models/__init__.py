from destinations.models.destinations import Destination, DestinationKind
from destinations.models.exports import EventExport
from destinations.models.forwarding import ForwardBatch, RemoteContact
from destinations.models.syncs import AudienceSync, SyncRecord, SyncRun
from destinations.models.webhooks import WebhookDelivery

__all__ = [
    "AudienceSync",
    "Destination",
    "DestinationKind",
    "EventExport",
    "ForwardBatch",
    "RemoteContact",
    "SyncRecord",
    "SyncRun",
    "WebhookDelivery",
]
