from django.urls import include, path

from messaging.api import views

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
    path("", include("messaging.api.template_urls")),
    path("", include("messaging.api.message_urls")),
    path("", include("messaging.api.inapp_urls")),
]
