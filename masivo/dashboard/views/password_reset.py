"""Password reset by email: Django's views, with Masivo's templates and two changes to whom
the email goes (see `PasswordResetForm`)."""

import hashlib
import logging

import redis
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy

from masivo.tenancy.redis import hit_counter

logger = logging.getLogger(__name__)

RESETS_PER_EMAIL_PER_HOUR = 3


def _over_hourly_limit(email: str) -> bool:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    try:
        hits, _ = hit_counter(
            f"{settings.MASIVO_REDIS_PREFIX}ratelimit:password-reset:{digest}",
            window_seconds=3600,
        )
    except redis.RedisError:
        logger.warning("password reset rate limit skipped: Redis unavailable", exc_info=True)
        return False
    return hits > RESETS_PER_EMAIL_PER_HOUR


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Unlike Django's, it also mails accounts without a usable password (the members added
    before invitations existed had none, and this is their way in), and it sends at most
    RESETS_PER_EMAIL_PER_HOUR emails to an address. The page says the same in every case."""

    def get_users(self, email):
        if _over_hourly_limit(email):
            return []
        return list(get_user_model().objects.filter(email__iexact=email.strip(), is_active=True))


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
