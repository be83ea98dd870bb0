"""Templates in the API (messaging.api.templates)."""

from django.urls import path

from messaging.api import templates

urlpatterns = [
    path(
        "messaging/templates",
        templates.TemplateListView.as_view(),
        name="messaging-template-list",
    ),
    path(
        "messaging/templates/<int:id>",
        templates.TemplateDetailView.as_view(),
        name="messaging-template-detail",
    ),
    path(
        "messaging/templates/<int:id>/versions",
        templates.TemplateVersionListView.as_view(),
        name="messaging-template-versions",
    ),
    path(
        "messaging/templates/<int:id>/versions/<int:number>",
        templates.TemplateVersionDetailView.as_view(),
        name="messaging-template-version",
    ),
    path(
        "messaging/templates/<int:id>/preview",
        templates.TemplatePreviewView.as_view(),
        name="messaging-template-preview",
    ),
]
