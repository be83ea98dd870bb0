"""API routes: journeys (journeys.api.journeys) and their enrollments (journeys.api.enrollments).
A second id in a path is taken as text and read by the view (as messaging's template versions
do): the journey is looked up first, so another workspace's is a 404 whatever follows it."""

from django.urls import path

from journeys.api import enrollments
from journeys.api import journeys as views

_ACTIONS = {
    "validate": views.JourneyValidateView,
    "publish": views.JourneyPublishView,
    "pause": views.JourneyPauseView,
    "resume": views.JourneyResumeView,
    "archive": views.JourneyArchiveView,
    "stats": views.JourneyStatsView,
}

urlpatterns = [
    path("journeys", views.JourneyListView.as_view(), name="journey-list"),
    path(
        "journeys/graph-schema",
        views.JourneyGraphSchemaView.as_view(),
        name="journey-graph-schema",
    ),
    path("journeys/<int:id>", views.JourneyDetailView.as_view(), name="journey-detail"),
    *(
        path(f"journeys/<int:id>/{action}", view.as_view(), name=f"journey-{action}")
        for action, view in _ACTIONS.items()
    ),
    path(
        "journeys/<int:id>/versions",
        views.JourneyVersionListView.as_view(),
        name="journey-version-list",
    ),
    path(
        "journeys/<int:id>/versions/<str:number>",
        views.JourneyVersionDetailView.as_view(),
        name="journey-version-detail",
    ),
    path(
        "journeys/<int:id>/enrollments",
        enrollments.JourneyEnrollmentListView.as_view(),
        name="journey-enrollment-list",
    ),
    path(
        "journeys/<int:id>/enrollments/<str:enrollment_id>",
        enrollments.JourneyEnrollmentDetailView.as_view(),
        name="journey-enrollment-detail",
    ),
    path(
        "journeys/<int:id>/enrollments/<str:enrollment_id>/exit",
        enrollments.JourneyEnrollmentExitView.as_view(),
        name="journey-enrollment-exit",
    ),
]
