"""Amazon S3 (being written: see docs/destinations.md)."""

from destinations.connectors.base import Connector
from destinations.models import DestinationKind


class S3Connector(Connector):
    kind = DestinationKind.S3
    label = "Amazon S3"
    summary = "Amazon S3."
