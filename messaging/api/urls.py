from django.urls import include, path

from messaging.api import topics, views

urlpatterns = [
    path(
        "messaging/connections",
        views.ConnectionListView.as_view(),
        name="messaging-connection-list",
    ),
    path(
        "messaging/connections/<int:id>",
        views.ConnectionDetailView.as_view(),
        name="messaging-connection-detail",
    ),
    path(
        "messaging/connections/<int:id>/test",
        views.ConnectionTestView.as_view(),
        name="messaging-connection-test",
    ),
    path("messaging/push-topics", topics.TopicListView.as_view(), name="messaging-topic-list"),
    path(
        "messaging/push-topics/<int:id>",
        topics.TopicDetailView.as_view(),
        name="messaging-topic-detail",
    ),
    path("", include("messaging.api.template_urls")),
    path("", include("messaging.api.message_urls")),
    path("", include("messaging.api.inapp_urls")),
    path("", include("messaging.api.campaign_urls")),
]
