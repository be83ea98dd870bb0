from django.apps import AppConfig

from masivo.feeds.registry import feed_register

# What changed about each customer (ProfileChange); read it with masivo.feeds.
PROFILE_CHANGES_FEED = "profile_changes"
# Every event the follow-up has resolved (ProcessedEvent), while a consumer follows it.
PROCESSED_EVENTS_FEED = "processed_events"


class ProfilesConfig(AppConfig):
    name = "profiles"

    def ready(self):
        feed_register(
            name=PROFILE_CHANGES_FEED,
            table=self.get_model("ProfileChange")._meta.db_table,
            age_column="changed_at",
            # NULL `processed_at`: the ingestion follow-up has yet to consume the row (its
            # outbox), so retention must keep it however old it is.
            pending_column="processed_at",
        )
        feed_register(
            name=PROCESSED_EVENTS_FEED,
            table=self.get_model("ProcessedEvent")._meta.db_table,
            age_column="processed_at",
        )
