"""API routes of destinations, wired in by masivo/urls.py under /api/v1/."""

from django.urls import include, path

from destinations.api import destinations, syncs

urlpatterns = [
    path("destinations", destinations.DestinationListView.as_view(), name="destination-list"),
    path(
        "destinations/kinds", destinations.DestinationKindsView.as_view(), name="destination-kinds"
    ),
    path(
        "destinations/<int:id>",
        destinations.DestinationDetailView.as_view(),
        name="destination-detail",
    ),
    path(
        "destinations/<int:id>/test",
        destinations.DestinationTestView.as_view(),
        name="destination-test",
    ),
    path(
        "destinations/<int:id>/enable",
        destinations.DestinationEnableView.as_view(),
        name="destination-enable",
    ),
    path(
        "destinations/<int:id>/disable",
        destinations.DestinationDisableView.as_view(),
        name="destination-disable",
    ),
    path(
        "destinations/<int:id>/forwarding",
        destinations.DestinationForwardingView.as_view(),
        name="destination-forwarding",
    ),
    path("destinations/syncs", syncs.SyncListView.as_view(), name="audience-sync-list"),
    path("destinations/syncs/<int:id>", syncs.SyncDetailView.as_view(), name="audience-sync"),
    path(
        "destinations/syncs/<int:id>/run", syncs.SyncRunNowView.as_view(), name="audience-sync-run"
    ),
    path(
        "destinations/syncs/<int:id>/pause",
        syncs.SyncPauseView.as_view(),
        name="audience-sync-pause",
    ),
    path(
        "destinations/syncs/<int:id>/resume",
        syncs.SyncResumeView.as_view(),
        name="audience-sync-resume",
    ),
    path(
        "destinations/syncs/<int:id>/runs",
        syncs.SyncRunsView.as_view(),
        name="audience-sync-runs",
    ),
    path(
        "destinations/syncs/<int:id>/runs/<int:run_id>",
        syncs.SyncRunView.as_view(),
        name="audience-sync-run-detail",
    ),
    path(
        "destinations/syncs/<int:id>/runs/<int:run_id>/replay",
        syncs.SyncRunReplayView.as_view(),
        name="audience-sync-run-replay",
    ),
    path(
        "destinations/syncs/<int:id>/failed-records",
        syncs.SyncFailedRecordsView.as_view(),
        name="audience-sync-failed-records",
    ),
    path("", include("destinations.api.webhook_urls")),
    path("", include("destinations.api.export_urls")),
]
