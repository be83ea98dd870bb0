"""Meta Conversions API (being written: see docs/destinations.md)."""

from destinations.connectors.base import Connector
from destinations.models import DestinationKind


class MetaConversionsConnector(Connector):
    kind = DestinationKind.META_CAPI
    label = "Meta Conversions API"
    summary = "Meta Conversions API."
