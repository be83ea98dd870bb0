from django.apps import AppConfig


class DestinationsConfig(AppConfig):
    name = "destinations"

    def ready(self):
        from audiences.apps import MEMBERSHIP_CHANGES_FEED
        from destinations.forwarding import CONSUMER as FORWARDING
        from destinations.forwarding import FEEDS
        from destinations.streaming import CONSUMER as STREAMING
        from masivo.feeds.registry import feed_consumer_register

        # Streaming syncs follow their audience; forwarding follows every feed it forwards,
        # each with a cursor per sync or destination (`<consumer>:<id>`).
        feed_consumer_register(
            feed=MEMBERSHIP_CHANGES_FEED, name=STREAMING, is_scoped=True, per_key=True
        )
        for feed in FEEDS:
            feed_consumer_register(feed=feed, name=FORWARDING, per_key=True)
