"""Google Ads Customer Match (being written: see docs/destinations.md)."""

from destinations.connectors.base import Connector
from destinations.models import DestinationKind


class GoogleAdsConnector(Connector):
    kind = DestinationKind.GOOGLE_ADS
    label = "Google Ads Customer Match"
    summary = "Google Ads Customer Match."
