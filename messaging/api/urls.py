from django.urls import path

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
]
