"""TikTok audiences (being written: see docs/destinations.md)."""

from destinations.connectors.base import Connector
from destinations.models import DestinationKind


class TikTokConnector(Connector):
    kind = DestinationKind.TIKTOK
    label = "TikTok audiences"
    summary = "TikTok audiences."
