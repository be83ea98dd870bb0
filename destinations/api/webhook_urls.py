"""API routes of webhook endpoints (destinations.api.webhooks), under /api/v1/."""

from django.urls import path

from destinations.api import webhooks as views

ENDPOINT = "destinations/webhooks/<int:id>"

urlpatterns = [
    path("destinations/webhooks", views.WebhookEndpointListView.as_view(), name="webhook-list"),
    path(ENDPOINT, views.WebhookEndpointDetailView.as_view(), name="webhook-detail"),
    path(
        f"{ENDPOINT}/rotate-secret",
        views.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path(f"{ENDPOINT}/test", views.WebhookTestView.as_view(), name="webhook-test"),
    path(
        f"{ENDPOINT}/deliveries", views.WebhookDeliveriesView.as_view(), name="webhook-deliveries"
    ),
    path(
        f"{ENDPOINT}/deliveries/<int:delivery_id>",
        views.WebhookDeliveryDetailView.as_view(),
        name="webhook-delivery",
    ),
    path(
        f"{ENDPOINT}/deliveries/<int:delivery_id>/replay",
        views.WebhookDeliveryReplayView.as_view(),
        name="webhook-delivery-replay",
    ),
]
