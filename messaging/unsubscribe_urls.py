"""Public routes without sign-in: the unsubscribe page (and RFC 8058 one-click POST) and the
preference centre, each opened by the signed token of a message's links."""

from django.urls import path

from messaging.views import public

urlpatterns = [
    path("u/<str:token>", public.unsubscribe, name="messaging-unsubscribe"),
    path("preferences/<str:token>", public.preferences, name="messaging-preferences"),
]
