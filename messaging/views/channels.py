"""Settings, Channels: connect, test and disconnect the workspace's providers (and see in-app,
which is built in). Thin: forms check shapes, messaging.services does the rest."""

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.errors import permission_denied
from masivo.ui.forms import add_service_error
from messaging import selectors, services
from messaging.channels import PROVIDERS
from messaging.channels.base import Provider
from messaging.feedback.links import webhook_urls

CHANNEL_NAMES = {"email": "Email", "whatsapp": "WhatsApp", "sms": "SMS", "push": "Push"}


def _provider_or_404(name: str) -> Provider:
    provider = PROVIDERS.get(name)
    if provider is None:
        raise Http404("no such provider")
    return provider


class ConnectionForm(forms.Form):
    """Built from the provider's fields. On an update, a credential left empty is kept."""

    def __init__(self, *args, provider: Provider, is_update: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = provider
        for name, spec in provider.fields.items():
            if spec.is_secret:
                widget = (
                    forms.Textarea(attrs={"rows": 6, "autocomplete": "off", "spellcheck": "false"})
                    if spec.is_multiline
                    else forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False)
                )
                help_text = spec.help_text
                if is_update:
                    help_text = f"{help_text} Leave empty to keep the stored one.".strip()
                required = spec.is_required and not is_update
            else:
                widget = forms.Textarea(attrs={"rows": 3}) if spec.is_multiline else None
                help_text = spec.help_text
                required = spec.is_required
            self.fields[name] = forms.CharField(
                label=spec.label,
                required=required,
                help_text=help_text,
                widget=widget,
                strip=False,
            )

    def values(self) -> dict:
        """What to hand the service: every setting, and the credentials that were typed."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if not (self.provider.fields[name].is_secret and value == "")
        }


def _cards(connections) -> list[dict]:
    by_provider = {connection.provider: connection for connection in connections}
    return [
        {
            "provider": provider,
            "channels": [CHANNEL_NAMES[channel] for channel in provider.channels],
            "connection": by_provider.get(name),
            "settings": [
                (spec.label, by_provider[name].settings.get(field_name))
                for field_name, spec in provider.fields.items()
                if not spec.is_secret
                and name in by_provider
                and by_provider[name].settings.get(field_name)
            ],
            "credentials": [
                (spec.label, by_provider[name].credential_hints.get(field_name, ""))
                for field_name, spec in provider.fields.items()
                if spec.is_secret and name in by_provider
            ],
        }
        for name, provider in PROVIDERS.items()
    ]


@require_http_methods(["GET", "HEAD"])
@workspace_view(permission=Permission.MANAGE_WORKSPACE)
def channels(request):
    cards = _cards(selectors.connections_list())
    for card in cards:  # the URLs to paste at the provider (delivery feedback)
        card["webhooks"] = webhook_urls(card["connection"]) if card["connection"] else []
    return render(request, "messaging/channels.html", {"cards": cards})


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_WORKSPACE)
def channel_connect(request, provider: str):
    """Connect a provider, or change its connection (the same form, credentials kept)."""
    spec = _provider_or_404(provider)
    if not request.actor.can(Permission.MANAGE_WORKSPACE):
        return permission_denied(request)
    connection = selectors.connection_for_provider(spec.name)
    is_update = connection is not None
    initial = dict(connection.settings) if connection else {}
    form = ConnectionForm(
        request.POST if request.method == "POST" else None,
        provider=spec,
        is_update=is_update,
        initial=initial,
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                if connection:
                    services.connection_update(
                        connection=connection, values=form.values(), actor=request.actor
                    )
                else:
                    services.connection_create(
                        workspace=request.workspace,
                        provider=spec.name,
                        values=form.values(),
                        actor=request.actor,
                    )
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                verb = "updated" if is_update else "connected"
                messages.success(request, f"{spec.label} {verb}. Test the connection to check it.")
                return redirect("dashboard:settings_channels", workspace_id=request.workspace.id)
    context = {"provider": spec, "form": form, "connection": connection}
    return render(request, "messaging/channel_form.html", context, status=status)


@require_POST
@workspace_view(permission=Permission.MANAGE_WORKSPACE)
def channel_test(request, provider: str):
    spec = _provider_or_404(provider)
    connection = selectors.connection_for_provider(spec.name)
    if connection is None:
        raise Http404("not connected")
    outcome = services.connection_test(connection=connection, actor=request.actor)
    (messages.success if outcome.is_ok else messages.error)(request, outcome.detail)
    return redirect("dashboard:settings_channels", workspace_id=request.workspace.id)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_WORKSPACE)
def channel_disconnect(request, provider: str):
    """GET asks for confirmation; POST deletes the connection and its credentials."""
    spec = _provider_or_404(provider)
    if not request.actor.can(Permission.MANAGE_WORKSPACE):
        return permission_denied(request)
    connection = selectors.connection_for_provider(spec.name)
    if connection is None:
        raise Http404("not connected")
    if request.method != "POST":
        return render(request, "messaging/channel_disconnect.html", {"provider": spec})
    services.connection_delete(connection=connection, actor=request.actor)
    messages.success(request, f"{spec.label} disconnected; its credentials are deleted.")
    return redirect("dashboard:settings_channels", workspace_id=request.workspace.id)
