"""Public routes without sign-in, under /m/: provider webhooks (each proves itself by the
provider's signature) and email open and click tracking (signed tokens).
See docs/messaging/webhooks.md."""

from django.urls import path, re_path

from messaging.feedback import views

urlpatterns = [
    path(
        "webhooks/sendgrid/<str:token>",
        views.sendgrid_events,
        name="messaging_sendgrid_events",
    ),
    path(
        "webhooks/twilio/<str:token>/status",
        views.twilio_status,
        name="messaging_twilio_status",
    ),
    path(
        "webhooks/twilio/<str:token>/inbound",
        views.twilio_inbound,
        name="messaging_twilio_inbound",
    ),
    path("c/<str:token>", views.click, name="messaging_click"),
    re_path(r"^o/(?P<token>[^/]+)\.gif$", views.open_pixel, name="messaging_open"),
]
