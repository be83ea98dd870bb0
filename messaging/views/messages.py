"""The message log (filters, one message with its decision and status history) and Settings,
Contact policy and Suppressions. Thin: forms check shapes, messaging.policy decides."""

from django import forms
from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import add_service_error
from masivo.ui.keyset import cursor_from, newest_first_page
from masivo.ui.pages import dashboard_source, page_url
from messaging.models import Channel, ContactPolicy, Message, MessageStatus, Suppression
from messaging.policy import DECISION_CODES
from messaging.policy.settings import contact_policy_get, contact_policy_update
from messaging.policy.suppressions import suppression_add, suppression_remove, suppressions_list
from messaging.policy.vocabulary import ADDRESSED_CHANNELS

PAGE_SIZE = 50
ANY = [("", "Any")]


class MessageFilterForm(forms.Form):
    customer = forms.IntegerField(required=False, min_value=1, label="Customer id")
    channel = forms.ChoiceField(choices=ANY + Channel.choices, required=False)
    status = forms.ChoiceField(choices=ANY + MessageStatus.choices, required=False)
    decision = forms.ChoiceField(
        choices=ANY + [(code, code.replace("_", " ")) for code in DECISION_CODES], required=False
    )
    template = forms.IntegerField(required=False, min_value=1, label="Template id")

    def filters(self) -> dict:
        data = self.cleaned_data
        names = {"customer": "customer_id", "template": "template_id", "channel": "channel",
                 "status": "status", "decision": "decision_code"}  # fmt: skip
        return {column: data[name] for name, column in names.items() if data.get(name)}


@require_safe
@workspace_view(permission=Permission.READ)
def message_log(request):
    """Newest first, a page at a time by cursor; never counts."""
    form = MessageFilterForm(request.GET)
    page = None
    if form.is_valid():
        page = newest_first_page(
            Message.objects.filter(**form.filters()).select_related("customer", "template"),
            time_field="created_at",
            after=cursor_from(request, "after"),
            size=PAGE_SIZE,
        )
    context = {
        "form": form,
        "page": page,
        "is_first_page": "after" not in request.GET,
        "next_url": page and page.next_cursor and page_url(request, after=page.next_cursor),
        "first_url": page_url(request, after=None),
        "active_section": "messages",
    }
    return render(request, "messaging/messages/log.html", context)


@require_safe
@workspace_view(permission=Permission.READ)
def message_detail(request, message_id: int):
    message = get_object_or_404(
        Message.objects.select_related("customer", "template", "template_version"), id=message_id
    )
    context = {
        "message": message,
        "history": message.status_changes.order_by("at", "id"),
        "active_section": "messages",
    }
    return render(request, "messaging/messages/detail.html", context)


class ContactPolicyForm(forms.Form):
    frequency_caps = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="One cap a line: channel (or * for every channel), how many, per how many "
        "hours. For example: email 3 24",
    )
    quiet_hours_enabled = forms.BooleanField(required=False, label="Quiet hours on")
    quiet_hours_start = forms.TimeField(label="Quiet hours start", widget=forms.TimeInput(
        format="%H:%M", attrs={"type": "time"}))  # fmt: skip
    quiet_hours_end = forms.TimeField(label="Quiet hours end", widget=forms.TimeInput(
        format="%H:%M", attrs={"type": "time"}))  # fmt: skip
    quiet_hours_action = forms.ChoiceField(
        choices=ContactPolicy.QuietHoursAction.choices, widget=forms.RadioSelect,
        label="During quiet hours",
    )  # fmt: skip
    quiet_hours_channels = forms.MultipleChoiceField(
        choices=Channel.choices, required=False, widget=forms.CheckboxSelectMultiple,
        label="Channels quiet hours apply to",
    )  # fmt: skip

    def clean_frequency_caps(self) -> list[dict]:
        caps = []
        for number, line in enumerate(self.cleaned_data["frequency_caps"].splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
                raise forms.ValidationError(
                    f"Line {number}: write the channel, how many and per how many hours "
                    "(email 3 24)"
                )
            caps.append(
                {"channel": parts[0], "limit": int(parts[1]), "window_hours": int(parts[2])}
            )
        return caps


def caps_as_text(caps: list[dict]) -> str:
    return "\n".join(f"{c['channel']} {c['limit']} {c['window_hours']}" for c in caps)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.MANAGE_WORKSPACE)
def contact_policy(request):
    policy = contact_policy_get(workspace=request.workspace)
    initial = {
        "frequency_caps": caps_as_text(policy.frequency_caps),
        "quiet_hours_enabled": policy.quiet_hours_enabled,
        "quiet_hours_start": policy.quiet_hours_start,
        "quiet_hours_end": policy.quiet_hours_end,
        "quiet_hours_action": policy.quiet_hours_action,
        "quiet_hours_channels": policy.quiet_hours_channels,
    }
    form = ContactPolicyForm(request.POST if request.method == "POST" else None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                contact_policy_update(
                    workspace=request.workspace, changes=form.cleaned_data, actor=request.actor
                )
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                flash.success(request, "Contact policy saved.")
                return redirect(
                    "dashboard:settings_contact_policy", workspace_id=request.workspace.id
                )
    context = {"form": form, "policy": policy, "active_section": "settings"}
    return render(request, "messaging/policy/contact_policy.html", context, status=status)


class SuppressionForm(forms.Form):
    channel = forms.ChoiceField(choices=[(str(c), c.label) for c in ADDRESSED_CHANNELS])
    address = forms.CharField(max_length=320, help_text="An email address or an E.164 phone")
    reason = forms.ChoiceField(choices=Suppression.Reason.choices, initial="manual")
    detail = forms.CharField(max_length=500, required=False, label="Note")


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def suppressions(request):
    form = SuppressionForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                row, _ = suppression_add(
                    workspace=request.workspace, **form.cleaned_data,
                    source=dashboard_source(request), actor=request.actor,
                )  # fmt: skip
            except ServiceError as error:
                add_service_error(form, error)
                status = error.status
            else:
                flash.success(request, f"{row.address} is suppressed on {row.channel}.")
                return redirect(
                    "dashboard:settings_suppressions", workspace_id=request.workspace.id
                )
    search = request.GET.get("address", "").strip()
    page = newest_first_page(
        suppressions_list(address=search or None),
        time_field="created_at",
        after=cursor_from(request, "after"),
        size=PAGE_SIZE,
    )
    context = {
        "form": form,
        "page": page,
        "search": search,
        "next_url": page.next_cursor and page_url(request, after=page.next_cursor),
        "active_section": "settings",
    }
    return render(request, "messaging/policy/suppressions.html", context, status=status)


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def suppression_delete(request, suppression_id: int):
    suppression = get_object_or_404(Suppression.objects.all(), id=suppression_id)
    suppression_remove(suppression=suppression, actor=request.actor)
    flash.success(request, f"{suppression.address} removed from the suppression list.")
    return redirect("dashboard:settings_suppressions", workspace_id=request.workspace.id)
