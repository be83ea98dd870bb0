from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"

    def ready(self):
        from journeys.runner import CONSUMERS
        from masivo.feeds.registry import feed_consumer_register

        # Triggers, waits, goals and exits follow what happened, one cursor per workspace.
        for feed, consumer in CONSUMERS:
            feed_consumer_register(feed=feed, name=consumer, starts_from_now=True)
