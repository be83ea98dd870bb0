"""The in-app messages API for mobile apps (write key + customer token)."""

from django.urls import path

from messaging.api import inapp

urlpatterns = [
    path("inapp/messages", inapp.InAppMessageListView.as_view(), name="inapp-message-list"),
    path("inapp/messages/<int:id>/seen", inapp.InAppSeenView.as_view(), name="inapp-message-seen"),
    path(
        "inapp/messages/<int:id>/clicked",
        inapp.InAppClickedView.as_view(),
        name="inapp-message-clicked",
    ),
    path(
        "inapp/messages/<int:id>/dismissed",
        inapp.InAppDismissedView.as_view(),
        name="inapp-message-dismissed",
    ),
]
