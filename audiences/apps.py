from django.apps import AppConfig

from masivo.feeds.registry import feed_register

# Every enter and exit (MembershipChange), scoped by audience; read it with masivo.feeds.
MEMBERSHIP_CHANGES_FEED = "membership_changes"


class AudiencesConfig(AppConfig):
    name = "audiences"

    def ready(self):
        from audiences.departures import customers_departed
        from profiles.removal import register_departure_handler

        register_departure_handler(customers_departed)
        feed_register(
            name=MEMBERSHIP_CHANGES_FEED,
            table=self.get_model("MembershipChange")._meta.db_table,
            age_column="changed_at",
            scope_column="audience_id",
        )
