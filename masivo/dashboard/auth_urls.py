"""Sign-in and sign-out, outside the dashboard namespace: settings.LOGIN_URL names "login"."""

from django.urls import path

from masivo.dashboard.views import auth

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
]
