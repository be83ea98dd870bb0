"""Braze (being written: see docs/destinations.md)."""

from destinations.connectors.base import Connector
from destinations.models import DestinationKind


class BrazeConnector(Connector):
    kind = DestinationKind.BRAZE
    label = "Braze"
    summary = "Braze."
