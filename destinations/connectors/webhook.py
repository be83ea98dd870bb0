"""Webhooks (being written: see docs/destinations.md)."""

from destinations.connectors.base import Connector
from destinations.models import DestinationKind


class WebhookConnector(Connector):
    kind = DestinationKind.WEBHOOK
    label = "Webhooks"
    summary = "Webhooks."
