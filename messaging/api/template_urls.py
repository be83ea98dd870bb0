"""Templates in the API (messaging.api.templates). A version's `number` is matched as text
and checked by the view (a 404 unless a version number), so that tests/test_cross_tenant.py's
walk, which fills in only `{id}`, resolves the route."""

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
        "messaging/templates/<int:id>/versions/<str:number>",
        templates.TemplateVersionDetailView.as_view(),
        name="messaging-template-version",
    ),
    path(
        "messaging/templates/<int:id>/preview",
        templates.TemplatePreviewView.as_view(),
        name="messaging-template-preview",
    ),
    path(
        "messaging/templates/<int:id>/test-send",
        templates.TemplateTestSendView.as_view(),
        name="messaging-template-test-send",
    ),
]
