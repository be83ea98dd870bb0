"""API routes: messages, the suppression list and the contact policy."""

from django.urls import path

from messaging.api import messages

urlpatterns = [
    path("messages", messages.MessageListView.as_view(), name="message-list"),
    path("messages/<int:id>", messages.MessageDetailView.as_view(), name="message-detail"),
    path(
        "messaging/suppressions",
        messages.SuppressionListView.as_view(),
        name="messaging-suppression-list",
    ),
    path(
        "messaging/suppressions/<int:id>",
        messages.SuppressionDetailView.as_view(),
        name="messaging-suppression-detail",
    ),
    path(
        "messaging/contact-policy",
        messages.ContactPolicyView.as_view(),
        name="messaging-contact-policy",
    ),
]
