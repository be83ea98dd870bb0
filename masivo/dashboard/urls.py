"""The dashboard's URLs: the shell's own pages, and each app's pages wired in (every app owns
its pages in `<app>/views/`; this is the one place that knows them all)."""

from django.urls import include, path

from audiences.views import audiences, list_uploads
from audiences.views import editor as audience_editor
from audiences.views import explain as audience_explain
from audiences.views.customers import customer_audiences_panel
from journeys.views.customers import customer_journeys_panel
from masivo.dashboard.views import api_keys, home, members, sections, workspace_settings
from messaging.views.customers import customer_messages_panel
from profiles.views import customer_actions, customers, imports

app_name = "dashboard"

# Sections of the customer profile page that higher layers contribute (profiles.views.customers).
PROFILE_PAGE = {
    "panels": (customer_audiences_panel, customer_journeys_panel, customer_messages_panel)
}

workspace_pages = [
    path("", home.overview, name="overview"),
    path("customers/", customers.customers_list, name="customers"),
    path(
        "customers/<int:customer_id>/",
        customers.customer_detail,
        PROFILE_PAGE,
        name="customer_detail",
    ),
    path("customers/<int:customer_id>/events/", customers.customer_events, name="customer_events"),
    path(
        "customers/<int:customer_id>/consent/",
        customers.customer_consent,
        PROFILE_PAGE,
        name="customer_consent",
    ),
    path(
        "customers/<int:customer_id>/edit/",
        customer_actions.customer_edit,
        name="customer_edit",
    ),
    path(
        "customers/<int:customer_id>/delete/",
        customer_actions.customer_delete,
        name="customer_delete",
    ),
    path(
        "customers/<int:customer_id>/erase/",
        customer_actions.customer_erase,
        name="customer_erase",
    ),
    path(
        "customers/<int:customer_id>/export.json",
        customer_actions.customer_export,
        name="customer_export",
    ),
    path("customers/import/", imports.customer_imports, name="customer_imports"),
    path(
        "customers/import/<int:import_id>/",
        imports.customer_import_detail,
        name="customer_import_detail",
    ),
    path(
        "customers/import/<int:import_id>/progress/",
        imports.customer_import_progress,
        name="customer_import_progress",
    ),
    path(
        "customers/import/<int:import_id>/errors.csv",
        imports.customer_import_errors,
        name="customer_import_errors",
    ),
    path("audiences/", audiences.audiences_list, name="audiences"),
    path("audiences/new/", audience_editor.audience_create, name="audience_create"),
    path("audiences/preview/", audience_editor.audience_preview, name="audience_preview"),
    path(
        "audiences/event-properties/",
        audience_editor.audience_event_properties,
        name="audience_event_properties",
    ),
    path("audiences/<int:audience_id>/", audiences.audience_detail, name="audience_detail"),
    path("audiences/<int:audience_id>/edit/", audience_editor.audience_edit, name="audience_edit"),
    path("audiences/<int:audience_id>/delete/", audiences.audience_delete, name="audience_delete"),
    path(
        "audiences/<int:audience_id>/recalculate/",
        audiences.audience_recalculate,
        name="audience_recalculate",
    ),
    path(
        "audiences/<int:audience_id>/recalculations/<int:run_id>/",
        audiences.audience_recalculation_progress,
        name="audience_recalculation_progress",
    ),
    path(
        "audiences/<int:audience_id>/members/",
        audiences.audience_members_change,
        name="audience_members_change",
    ),
    path(
        "audiences/<int:audience_id>/uploads/",
        list_uploads.list_upload_new,
        name="list_upload_new",
    ),
    path(
        "audiences/<int:audience_id>/uploads/recent/",
        list_uploads.list_uploads_recent,
        name="list_uploads_recent",
    ),
    path(
        "audiences/<int:audience_id>/uploads/<int:upload_id>/",
        list_uploads.list_upload_detail,
        name="list_upload_detail",
    ),
    path(
        "audiences/<int:audience_id>/uploads/<int:upload_id>/progress/",
        list_uploads.list_upload_progress,
        name="list_upload_progress",
    ),
    path(
        "audiences/<int:audience_id>/uploads/<int:upload_id>/problems.csv",
        list_uploads.list_upload_problems,
        name="list_upload_problems",
    ),
    path("audiences/<int:audience_id>/why/", audience_explain.audience_why, name="audience_why"),
    path(
        "audiences/<int:audience_id>/explain/<int:customer_id>/",
        audience_explain.audience_explain,
        name="audience_explain",
    ),
    path("", include("journeys.views.urls")),
    path("messages/", sections.messages, name="messages"),
    path("", include("destinations.views.urls")),
    path("settings/", workspace_settings.workspace_settings, name="settings_workspace"),
    path(
        "settings/profiles/",
        workspace_settings.profile_settings,
        name="settings_profiles",
    ),
    path("settings/api-keys/", api_keys.api_keys, name="settings_api_keys"),
    path(
        "settings/api-keys/<int:key_id>/revoke/",
        api_keys.api_key_revoke,
        name="settings_api_key_revoke",
    ),
    path("", include("messaging.views.urls")),
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
    path(
        "settings/members/invitations/<int:invitation_id>/revoke/",
        members.invitation_revoke,
        name="settings_invitation_revoke",
    ),
]

urlpatterns = [
    path("", home.home, name="home"),
    path("w/<int:workspace_id>/", include(workspace_pages)),
]
