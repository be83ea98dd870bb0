"""Meta Custom Audiences (being written: see docs/destinations.md)."""

from destinations.connectors.base import Connector
from destinations.models import DestinationKind


class MetaConnector(Connector):
    kind = DestinationKind.META
    label = "Meta Custom Audiences"
    summary = "Meta Custom Audiences."
