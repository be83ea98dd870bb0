"""Sign-in, sign-out, password reset and invitation links, outside the dashboard namespace:
settings.LOGIN_URL names "login", and Django's password-reset views name their next steps."""

from django.urls import path

from masivo.dashboard.views import auth, invitations, password_reset

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("password-reset/", password_reset.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        password_reset.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        password_reset.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        password_reset.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("invitations/<str:token>/", invitations.invitation_accept, name="invitation_accept"),
]
