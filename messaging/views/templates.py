"""Message templates in the dashboard: the list, the editor per channel (each save is a new
version), version history, and a live preview for a chosen customer. Thin: the form turns
fields into content, messaging.template_services does the rest.

The email preview is its own page (`email_preview`, `draft_email_preview`) with its own
headers, shown in a sandboxed iframe: the email's HTML is the marketer's, so it runs with
scripts, forms and same-origin access off (PROVIDERS.md, "Email preview sandbox")."""

from __future__ import annotations

import json
import secrets

from django import forms
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_http_methods

from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import add_service_error
from messaging import template_services as services
from messaging.models import Channel, Template, TemplateVersion
from messaging.templating import CHANNEL_FIELDS, TemplateRenderError, content_clean
from profiles.models import Customer

EMAIL_PREVIEW_CSP = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "img-src https: data:; style-src 'unsafe-inline' https:; font-src https: data:; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)
DRAFT_SECONDS = 15 * 60
JSON_KINDS = ("map", "buttons")


def _template_or_404(template_id: int) -> Template:
    template = services.templates_list(include_archived=True).filter(id=template_id).first()
    if template is None:
        raise Http404("no such template")
    return template


class TemplateForm(forms.Form):
    """Name and description, then the channel's fields (JSON for data, variables and
    buttons), then the locale variants as JSON."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, channel: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel
        for name, field in CHANNEL_FIELDS[channel].items():
            label = name.replace("_", " ").capitalize()
            if field.kind in ("text", "html"):
                rows = 14 if field.kind == "html" else (1 if field.single_line else 4)
                widget = forms.Textarea(attrs={"rows": rows, "spellcheck": "false"})
                self.fields[name] = forms.CharField(
                    label=label, required=False, strip=False, widget=widget
                )
            elif field.kind in JSON_KINDS:
                self.fields[name] = forms.CharField(
                    label=f"{label} (JSON)",
                    required=False,
                    widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
                )
            elif field.kind == "layout":
                self.fields[name] = forms.ChoiceField(
                    label=label, choices=[(v, v.capitalize()) for v in ("modal", "banner", "card")]
                )
            elif field.kind == "hours":
                self.fields[name] = forms.IntegerField(
                    label="Expires after (hours)", required=False
                )
            else:
                self.fields[name] = forms.CharField(label="Content SID", required=False)
        self.fields["locales"] = forms.CharField(
            label="Locale variants (JSON: locale → the fields that differ)",
            required=False,
            widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        )

    def _json(self, name: str, empty):
        raw = self.cleaned_data.get(name) or ""
        if not raw.strip():
            return empty
        try:
            return json.loads(raw)
        except ValueError:
            self.add_error(name, "Not valid JSON.")
            return empty

    def content(self) -> tuple[dict, dict]:
        content = {}
        for name, field in CHANNEL_FIELDS[self.channel].items():
            if field.kind in JSON_KINDS:
                content[name] = self._json(name, [] if field.kind == "buttons" else {})
            else:
                content[name] = self.cleaned_data.get(name)
        return content, self._json("locales", {})

    @staticmethod
    def initial_for(template: Template, version: TemplateVersion) -> dict:
        initial = {"name": template.name, "description": template.description}
        for name, field in CHANNEL_FIELDS[template.channel].items():
            value = version.content.get(name)
            initial[name] = (
                json.dumps(value, ensure_ascii=False) if field.kind in JSON_KINDS else value
            )
        initial["locales"] = (
            json.dumps(version.locales, ensure_ascii=False) if version.locales else ""
        )
        return initial


def _service_error(form: forms.Form, error: ServiceError) -> None:
    """A content error names `content.subject` or `locales.es.subject`: show it on the field."""
    field = (error.field or "").split(".")
    if field[0] == "content" and len(field) > 1:
        error.field = field[1]
    elif field[0] == "locales":
        error.message = f"{'.'.join(field[1:])}: {error.message}"
        error.field = "locales"
    add_service_error(form, error)


@require_http_methods(["GET", "HEAD"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def template_list(request):
    channel = request.GET.get("channel") or None
    if channel not in (None, *Channel.values):
        channel = None
    templates = services.templates_list(channel=channel)
    context = {
        "templates": templates,
        "channels": Channel.choices,
        "channel": channel,
        "active_section": "templates",
    }
    return render(request, "messaging/templates/list.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def template_create(request, channel: str):
    if channel not in Channel.values:
        raise Http404("no such channel")
    form = TemplateForm(request.POST if request.method == "POST" else None, channel=channel)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            content, locales = form.content()
            if form.is_valid():
                try:
                    template = services.template_create(
                        workspace=request.workspace,
                        name=form.cleaned_data["name"],
                        description=form.cleaned_data["description"],
                        channel=channel,
                        content=content,
                        locales=locales,
                        actor=request.actor,
                    )
                except ServiceError as error:
                    _service_error(form, error)
                else:
                    return redirect("dashboard:template_edit", request.workspace.id, template.id)
    return _editor(request, form, template=None, channel=channel, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def template_edit(request, template_id: int):
    template = _template_or_404(template_id)
    version = services.template_current_version(template)
    form = TemplateForm(
        request.POST if request.method == "POST" else None,
        channel=template.channel,
        initial=TemplateForm.initial_for(template, version),
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            content, locales = form.content()
            if form.is_valid():
                try:
                    changed = content != version.content or locales != version.locales
                    services.template_update(
                        template=template,
                        actor=request.actor,
                        name=form.cleaned_data["name"],
                        description=form.cleaned_data["description"],
                        content=content if changed else None,
                        locales=locales if changed else None,
                    )
                except ServiceError as error:
                    _service_error(form, error)
                else:
                    return redirect("dashboard:template_edit", request.workspace.id, template.id)
    return _editor(request, form, template=template, channel=template.channel, status=status)


def _editor(request, form, *, template, channel: str, status: int):
    customers = Customer.objects.order_by("-id").only("id", "first_name", "last_name", "email")[:50]
    context = {
        "form": form,
        "template": template,
        "channel": channel,
        "channel_label": Channel(channel).label,
        "customers": customers,
        "active_section": "templates",
    }
    return render(request, "messaging/templates/form.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def template_versions(request, template_id: int):
    template = _template_or_404(template_id)
    versions = [
        (
            version,
            json.dumps(
                {"content": version.content, "locales": version.locales},
                indent=2,
                ensure_ascii=False,
            ),
        )
        for version in services.template_versions(template)[:100]
    ]
    context = {"template": template, "versions": versions, "active_section": "templates"}
    return render(request, "messaging/templates/versions.html", context)


@require_http_methods(["POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def template_draft_preview(request, channel: str):
    """The live preview (HTMX): render the editor's unsaved content for the chosen customer.
    The draft is kept a few minutes so the email iframe can load it from its own URL."""
    if channel not in Channel.values:
        raise Http404("no such channel")
    form = TemplateForm(request.POST, channel=channel)
    context = {"channel": channel}
    customer = _customer(request.POST.get("preview_customer"))
    event = _event(request.POST.get("preview_event"))
    form.is_valid()
    content, locales = form.content()
    try:
        if customer is None:
            raise TemplateRenderError("Choose a customer to preview for.")
        if event is None:
            raise TemplateRenderError("The sample event is not a JSON object.")
        content, locales = content_clean(channel, content, locales)
        draft = {
            "channel": channel,
            "content": content,
            "locales": locales,
            "customer": customer.id,
            "event": event,
        }
        rendered = _render_draft(request, draft, customer)
    except (ServiceError, TemplateRenderError) as error:
        context["problem"] = getattr(error, "reason", None) or f"{error.field}: {error.message}"
        return render(request, "messaging/templates/_preview.html", context)
    context["fields"] = rendered.fields
    context["locale"] = rendered.locale
    context["customer"] = customer
    if channel == Channel.EMAIL:
        token = secrets.token_urlsafe(16)
        cache.set(_draft_key(request, token), draft, DRAFT_SECONDS)
        context["email_url"] = (
            f"/w/{request.workspace.id}/messaging/templates/drafts/{token}/email/"
        )
    return render(request, "messaging/templates/_preview.html", context)


def _customer(raw) -> Customer | None:
    if not raw or not str(raw).isdigit():
        return None
    return Customer.objects.filter(id=int(raw)).first()


def _event(raw):
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _draft_key(request, token: str) -> str:
    return f"template-draft:{request.workspace.id}:{request.user.id}:{token}"


def _render_draft(request, draft: dict, customer: Customer):
    version = TemplateVersion(
        workspace=request.workspace,
        template=Template(workspace=request.workspace, channel=draft["channel"]),
        number=0,
        content=draft["content"],
        locales=draft["locales"],
    )
    return services.render_preview_version(
        version, workspace=request.workspace, customer=customer, event=draft["event"]
    )


def _email_response(html: str) -> HttpResponse:
    """The email's HTML as its own sandboxed document: links open outside the frame."""
    response = HttpResponse(_with_base_target(html), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = EMAIL_PREVIEW_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


def _with_base_target(html: str) -> str:
    base = '<base target="_blank">'
    lowered = html.lower()
    head = lowered.find("<head>")
    if head >= 0:
        return html[: head + 6] + base + html[head + 6 :]
    return base + html


@xframe_options_sameorigin
@require_http_methods(["GET", "HEAD"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def email_preview(request, template_id: int):
    """A saved version (`?version=`, default the current one) for `?customer=`."""
    template = _template_or_404(template_id)
    if template.channel != Channel.EMAIL:
        raise Http404("not an email template")
    customer = _customer(request.GET.get("customer"))
    if customer is None:
        raise Http404("no such customer")
    version = request.GET.get("version")
    try:
        rendered = services.template_preview(
            template=template,
            customer=customer,
            version_number=int(version) if version and version.isdigit() else None,
        )
    except ServiceError:
        raise Http404("no such version") from None
    except TemplateRenderError as error:
        return _email_response(f"<p>This email cannot render: {escape(error.reason)}</p>")
    return _email_response(rendered.fields["html"])


@xframe_options_sameorigin
@require_http_methods(["GET", "HEAD"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def draft_email_preview(request, token: str):
    draft = cache.get(_draft_key(request, token))
    customer = draft and _customer(draft["customer"])
    if not draft or customer is None:
        raise Http404("this preview has expired; preview again")
    try:
        rendered = _render_draft(request, draft, customer)
    except TemplateRenderError as error:
        return _email_response(f"<p>This email cannot render: {escape(error.reason)}</p>")
    return _email_response(rendered.fields["html"])


@require_http_methods(["POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def template_test_send(request, template_id: int):
    """Send the saved version for a chosen customer, to an address given or theirs."""
    template = _template_or_404(template_id)
    customer = _customer(request.POST.get("customer"))
    context = {"message": None, "error": "", "workspace_id": request.workspace.id}
    status = 200
    if customer is None:
        context["error"], status = "Choose a customer of this workspace.", 400
    else:
        try:
            enqueued = services.template_test_send(
                template=template,
                customer=customer,
                actor=request.actor,
                to=(request.POST.get("to") or "").strip() or None,
            )
        except ServiceError as error:
            context["error"], status = error.message, error.status
        else:
            context["message"] = enqueued.message
    return render(request, "messaging/templates/_test_send_result.html", context, status=status)
