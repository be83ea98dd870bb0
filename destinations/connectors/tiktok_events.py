"""TikTok Events API (being written: see docs/destinations.md)."""

from destinations.connectors.base import Connector
from destinations.models import DestinationKind


class TikTokEventsConnector(Connector):
    kind = DestinationKind.TIKTOK_EVENTS
    label = "TikTok Events API"
    summary = "TikTok Events API."
