"""Sign-in with throttling, sign-out, and the admin's door to the same sign-in."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from masivo.dashboard import login_throttle
from masivo.dashboard.forms import LoginForm


def client_ip(request) -> str:
    """The client's address. Behind MASIVO_TRUSTED_PROXIES reverse proxies, it is the entry of
    X-Forwarded-For that the outermost trusted proxy appended; the rest of the header is
    client-controlled and ignored. With no trusted proxies, REMOTE_ADDR."""
    proxies = settings.MASIVO_TRUSTED_PROXIES
    if proxies:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [hop for hop in hops if hop]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or "unknown"


def _wait_text(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        wait = login_throttle.lockout_remaining(
            username=request.POST.get("username", ""), ip=client_ip(request)
        )
        if wait:
            return self.locked_out(wait)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        login_throttle.success_record(username=form.cleaned_data["username"])
        return super().form_valid(form)

    def form_invalid(self, form):
        username = self.request.POST.get("username", "")
        if username and self.request.POST.get("password"):
            wait = login_throttle.failure_record(username=username, ip=client_ip(self.request))
            if wait:
                return self.locked_out(wait)
        return super().form_invalid(form)

    def locked_out(self, wait: int):
        form = self.form_class(
            self.request, initial={"username": self.request.POST.get("username")}
        )
        context = self.get_context_data(
            form=form,
            lockout=f"Too many failed sign-in attempts. Try again in {_wait_text(wait)}.",
        )
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response


class LogoutView(auth_views.LogoutView):
    """POST only (Django refuses GET), so a link or an image cannot sign someone out."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have been signed out.")
        return response


def admin_login(request, extra_context=None):
    """Replaces the admin's own login form, so operators go through the throttled sign-in."""
    next_url = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    if not request.user.is_authenticated:
        return redirect_to_login(next_url or reverse("admin:index"))
    if not (request.user.is_active and request.user.is_staff):
        raise PermissionDenied("this account has no access to the operator admin")
    return redirect(next_url or "admin:index")
