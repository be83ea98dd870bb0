from django.urls import include, path

from masivo.dashboard.views import api_keys, home, members, sections, workspace_settings

app_name = "dashboard"

workspace_pages = [
    path("", home.overview, name="overview"),
    path("customers/", sections.customers, name="customers"),
    path("audiences/", sections.audiences, name="audiences"),
    path("journeys/", sections.journeys, name="journeys"),
    path("messages/", sections.messages, name="messages"),
    path("destinations/", sections.destinations, name="destinations"),
    path("settings/", workspace_settings.workspace_settings, name="settings_workspace"),
    path("settings/api-keys/", api_keys.api_keys, name="settings_api_keys"),
    path(
        "settings/api-keys/<int:key_id>/revoke/",
        api_keys.api_key_revoke,
        name="settings_api_key_revoke",
    ),
    path("settings/members/", members.members, name="settings_members"),
    path(
        "settings/members/<int:member_id>/role/",
        members.member_change_role,
        name="settings_member_role",
    ),
    path(
        "settings/members/<int:member_id>/remove/",
        members.member_remove,
        name="settings_member_remove",
    ),
]

urlpatterns = [
    path("", home.home, name="home"),
    path("w/<int:workspace_id>/", include(workspace_pages)),
]
