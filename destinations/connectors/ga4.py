"""Google Analytics 4 (being written: see docs/destinations.md)."""

from destinations.connectors.base import Connector
from destinations.models import DestinationKind


class GA4Connector(Connector):
    kind = DestinationKind.GA4
    label = "Google Analytics 4"
    summary = "Google Analytics 4."
