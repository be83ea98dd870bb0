"""Messaging's public routes under /m/, reached without signing in: provider webhooks, open
and click tracking, unsubscribe and preference pages. Each proves itself (a provider's
signature, a signed token) instead of a session or a key."""

from django.urls import include, path

urlpatterns = [
    path("", include("messaging.feedback_urls")),
    path("", include("messaging.unsubscribe_urls")),
]
