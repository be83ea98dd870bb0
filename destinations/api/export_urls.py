"""API routes of event exports (destinations.api.exports), under /api/v1/."""

from django.urls import path

from destinations.api import exports as views

urlpatterns = [
    path(
        "destinations/<int:id>/event-exports",
        views.EventExportsView.as_view(),
        name="destination-event-exports",
    ),
]
