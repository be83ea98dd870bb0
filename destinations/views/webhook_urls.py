"""Dashboard pages of webhook endpoints (destinations.views.webhooks), under /w/<workspace_id>/
(their names join the `dashboard:` namespace)."""

from django.urls import path

from destinations.views import webhooks

ENDPOINT = "destinations/webhooks/<int:endpoint_id>"

urlpatterns = [
    path("destinations/webhooks/", webhooks.webhook_list, name="webhooks"),
    path("destinations/webhooks/new/", webhooks.webhook_new, name="webhook_new"),
    path(f"{ENDPOINT}/", webhooks.webhook_detail, name="webhook_detail"),
    path(f"{ENDPOINT}/edit/", webhooks.webhook_edit, name="webhook_edit"),
    path(f"{ENDPOINT}/rotate-secret/", webhooks.webhook_rotate, name="webhook_rotate"),
    path(f"{ENDPOINT}/test/", webhooks.webhook_test, name="webhook_test"),
    path(
        f"{ENDPOINT}/deliveries/<int:delivery_id>/",
        webhooks.webhook_delivery_detail,
        name="webhook_delivery",
    ),
    path(
        f"{ENDPOINT}/deliveries/<int:delivery_id>/replay/",
        webhooks.webhook_delivery_replay,
        name="webhook_delivery_replay",
    ),
    path(f"{ENDPOINT}/<str:action>/", webhooks.webhook_action, name="webhook_action"),
]
