"""The shell's forms (sign-in, settings). They check shapes only; the services own every rule."""

import zoneinfo
from functools import cache

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UsernameField

from masivo.dashboard.login_throttle import normalize_username
from masivo.tenancy.models import ApiKey
from masivo.tenancy.roles import Role


@cache
def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class LoginForm(AuthenticationForm):
    username = UsernameField(
        label="Email",
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account.",
    }

    def clean_username(self):
        # Sign-in is case-insensitive; the stored spelling is what authentication matches
        # (accounts made by `createsuperuser` may have capitals).
        typed = normalize_username(self.cleaned_data["username"])
        stored = (
            get_user_model()
            .objects.filter(username__iexact=typed)
            .values_list("username", flat=True)
            .first()
        )
        return stored or typed


class WorkspaceSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    timezone = forms.ChoiceField(
        label="Time zone",
        choices=timezone_choices,
        help_text="Used for schedules, quiet hours and reports when a customer has none.",
    )


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the key is used, e.g. “iOS app”.")
    kind = forms.ChoiceField(
        choices=ApiKey.Kind.choices, initial=ApiKey.Kind.SECRET, widget=forms.RadioSelect
    )
    role = forms.ChoiceField(
        choices=[(Role.ADMIN, "Admin"), (Role.MARKETER, "Marketer"), (Role.VIEWER, "Viewer")],
        initial=Role.VIEWER,
        required=False,
        help_text="What a secret key may do. Write keys only send events and profiles.",
    )


class InvitationForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"placeholder": "name@company.com"})
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MARKETER)

    def __init__(self, *args, can_grant_owner: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_grant_owner:
            self.fields["role"].choices = [c for c in Role.choices if c[0] != Role.OWNER]


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class InvitationNewAccountForm(forms.Form):
    """The invitee's new account; the password rules are checked by the service."""

    name = forms.CharField(
        max_length=300, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "name"})
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not only digits, not a common password.",
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return cleaned
