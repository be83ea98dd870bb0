"""Dashboard pages of destinations, wired in by masivo/dashboard/urls.py under /w/<workspace_id>/
(their names join the `dashboard:` namespace)."""

from django.urls import include, path

from destinations.views import destinations, syncs

DESTINATION = "destinations/<int:destination_id>"
SYNC = "destinations/syncs/<int:sync_id>"

urlpatterns = [
    path("destinations/", destinations.destination_list, name="destination_list"),
    path("destinations/new/", destinations.destination_catalogue, name="destination_catalogue"),
    path(
        "destinations/new/<str:kind>/",
        destinations.destination_connect,
        name="destination_connect",
    ),
    path(f"{DESTINATION}/", destinations.destination_detail, name="destination_detail"),
    path(f"{DESTINATION}/edit/", destinations.destination_edit, name="destination_edit"),
    path(f"{DESTINATION}/test/", destinations.destination_test, name="destination_test"),
    path(
        f"{DESTINATION}/forwarding/",
        destinations.destination_forwarding,
        name="destination_forwarding",
    ),
    path(
        f"{DESTINATION}/<str:action>/",
        destinations.destination_action,
        name="destination_action",
    ),
    path("destinations/syncs/new/", syncs.sync_new, name="sync_new"),
    path(f"{SYNC}/", syncs.sync_detail, name="sync_detail"),
    path(f"{SYNC}/progress/", syncs.sync_progress, name="sync_progress"),
    path(f"{SYNC}/runs/<int:run_id>/replay/", syncs.sync_run_replay, name="sync_run_replay"),
    path(f"{SYNC}/<str:action>/", syncs.sync_action, name="sync_action"),
    path("audiences/<int:audience_id>/syncs/", syncs.audience_syncs, name="audience_syncs"),
    path("", include("destinations.views.webhook_urls")),
]
