"""Messaging's dashboard pages, wired in by masivo/dashboard/urls.py under /w/<workspace_id>/
(their names join the `dashboard:` namespace)."""

from django.urls import include, path

from messaging.views import channels

urlpatterns = [
    path("settings/channels/", channels.channels, name="settings_channels"),
    path(
        "settings/channels/<str:provider>/",
        channels.channel_connect,
        name="settings_channel_connect",
    ),
    path(
        "settings/channels/<str:provider>/test/",
        channels.channel_test,
        name="settings_channel_test",
    ),
    path(
        "settings/channels/<str:provider>/disconnect/",
        channels.channel_disconnect,
        name="settings_channel_disconnect",
    ),
    path("", include("messaging.views.template_urls")),
    path("", include("messaging.views.message_urls")),
    path("", include("messaging.views.campaign_urls")),
]
