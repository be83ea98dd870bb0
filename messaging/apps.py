from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self):
        # Registers the system check that a deployment has MASIVO_SECRET_KEYS (masivo.secrets).
        import masivo.secrets  # noqa: F401
        from masivo.feeds.registry import feed_consumer_register
        from messaging.topics import CONSUMER, MEMBERSHIP_FEED, PROFILE_FEED

        # Push topics follow each topic's audience, and devices and push consent.
        feed_consumer_register(feed=MEMBERSHIP_FEED, name=CONSUMER, is_scoped=True)
        feed_consumer_register(feed=PROFILE_FEED, name=CONSUMER, starts_from_now=True)
