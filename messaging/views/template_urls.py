"""Template pages (messaging.views.templates), under /w/<workspace_id>/."""

from django.urls import path

from messaging.views import templates

urlpatterns = [
    path("messaging/templates/", templates.template_list, name="templates"),
    path(
        "messaging/templates/new/<str:channel>/",
        templates.template_create,
        name="template_create",
    ),
    path(
        "messaging/templates/<int:template_id>/",
        templates.template_edit,
        name="template_edit",
    ),
    path(
        "messaging/templates/<int:template_id>/versions/",
        templates.template_versions,
        name="template_versions",
    ),
    path(
        "messaging/templates/<int:template_id>/preview/email/",
        templates.email_preview,
        name="template_email_preview",
    ),
    path(
        "messaging/templates/preview/<str:channel>/",
        templates.template_draft_preview,
        name="template_draft_preview",
    ),
    path(
        "messaging/templates/drafts/<str:token>/email/",
        templates.draft_email_preview,
        name="template_draft_email_preview",
    ),
    path(
        "messaging/templates/<int:template_id>/test-send/",
        templates.template_test_send,
        name="template_test_send",
    ),
]
