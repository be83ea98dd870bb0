from destinations.models.destinations import Destination, DestinationKind
from destinations.models.forwarding import ForwardBatch, RemoteContact
from destinations.models.syncs import AudienceSync, SyncRecord, SyncRun

__all__ = [
    "AudienceSync",
    "Destination",
    "DestinationKind",
    "ForwardBatch",
    "RemoteContact",
    "SyncRecord",
    "SyncRun",
]
