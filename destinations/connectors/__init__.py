"""Every connector, by destination kind (one module each behind `base.Connector`)."""

from destinations.connectors import (
    braze,
    ga4,
    google_ads,
    meta,
    meta_capi,
    s3,
    tiktok,
    tiktok_events,
    webhook,
)
from destinations.connectors.base import Connector

CONNECTORS: dict[str, type[Connector]] = {
    connector.kind: connector
    for connector in (
        meta.MetaConnector,
        meta_capi.MetaConversionsConnector,
        google_ads.GoogleAdsConnector,
        tiktok.TikTokConnector,
        tiktok_events.TikTokEventsConnector,
        braze.BrazeConnector,
        webhook.WebhookConnector,
        s3.S3Connector,
        ga4.GA4Connector,
    )
}


def connector_class(kind: str) -> type[Connector]:
    return CONNECTORS[kind]


def connector_for(destination) -> Connector:
    """The connector for a destination, holding its decrypted credentials."""
    return CONNECTORS[destination.kind](destination)
