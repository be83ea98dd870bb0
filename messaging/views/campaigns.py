"""Dashboard pages of campaigns: the list, the builder (with the estimate "N of M reachable"),
a campaign's page with its live progress (HTMX polling) and stats, and its actions (send,
schedule, pause, resume, cancel, delete). Thin: forms check shapes, messaging.campaigns
decides."""

from __future__ import annotations

import datetime
import zoneinfo

from django import forms
from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import add_service_error
from messaging import campaigns
from messaging.models import Campaign, Channel, Template

FINAL = (Campaign.Status.COMPLETED, Campaign.Status.CANCELED, Campaign.Status.FAILED)
ACTIONS = {
    "send": (campaigns.campaign_send_now, "is starting"),
    "schedule": (campaigns.campaign_schedule, "is scheduled"),
    "pause": (campaigns.campaign_pause, "is paused"),
    "resume": (campaigns.campaign_resume, "is sending again"),
    "cancel": (campaigns.campaign_cancel, "is canceled"),
}


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    channel = forms.ChoiceField(choices=Channel.choices)
    template = forms.TypedChoiceField(coerce=int, label="Template (variant A)")
    template_b = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Variant B template (optional)"
    )
    weight_a = forms.IntegerField(
        min_value=1, max_value=99, initial=50, required=False, label="Variant A share (%)"
    )
    audiences = forms.TypedMultipleChoiceField(coerce=int, widget=forms.CheckboxSelectMultiple)
    exclusions = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple, label="Exclude members of"
    )
    send_at = forms.DateTimeField(
        required=False,
        label="Send at (workspace time)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    local_date = forms.DateField(
        required=False, label="Or on this date…", widget=forms.DateInput(attrs={"type": "date"})
    )
    local_time = forms.TimeField(
        required=False,
        label="…at this time in each customer's zone",
        widget=forms.TimeInput(attrs={"type": "time"}),
    )
    throttle_per_minute = forms.IntegerField(
        min_value=1, required=False, label="Throttle (messages a minute)"
    )
    send_to_topic = forms.BooleanField(required=False, label="Send to the audience's push topic")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        from audiences.models import Audience

        self.workspace = workspace
        templates = [
            (t.id, f"{t.name} ({t.get_channel_display()})")
            for t in Template.objects.filter(is_archived=False).order_by("name")
        ]
        self.fields["template"].choices = templates
        self.fields["template_b"].choices = [("", "—"), *templates]
        audiences = [(a.id, a.name) for a in Audience.objects.order_by("name")]
        self.fields["audiences"].choices = audiences
        self.fields["exclusions"].choices = audiences

    def values(self) -> dict:
        data = self.cleaned_data
        send_at = data.get("send_at")
        if send_at is not None:
            zone = zoneinfo.ZoneInfo(self.workspace.timezone or "UTC")
            send_at = send_at.replace(tzinfo=None).replace(tzinfo=zone).astimezone(datetime.UTC)
        if data.get("template_b"):
            weight = data.get("weight_a") or 50
            variants = [
                {"name": "A", "template_id": data["template"], "weight": weight},
                {"name": "B", "template_id": data["template_b"], "weight": 100 - weight},
            ]
        else:
            variants = [{"name": "A", "template_id": data["template"], "weight": 100}]
        return {
            "name": data["name"],
            "channel": data["channel"],
            "audience_ids": data["audiences"],
            "excluded_audience_ids": data.get("exclusions") or [],
            "variants": variants,
            "send_at": send_at,
            "local_date": data.get("local_date"),
            "local_time": data.get("local_time"),
            "throttle_per_minute": data.get("throttle_per_minute"),
            "send_to_topic": data.get("send_to_topic") or False,
        }


FORM_FIELDS = {"variants": "template", "variants[0].template_id": "template",
               "variants[1].template_id": "template_b", "audience_ids": "audiences",
               "excluded_audience_ids": "exclusions"}  # fmt: skip


def _show_error(form, error: ServiceError) -> None:
    field = error.field or ""
    error.field = FORM_FIELDS.get(field, field.split("[")[0] if field else None)
    add_service_error(form, error)


@require_safe
@workspace_view(permission=Permission.READ)
def campaign_list(request):
    rows = list(campaigns.campaigns_list()[:200])
    context = {"rows": rows, "active_section": "campaigns"}
    return render(request, "messaging/campaigns/list.html", context)


def _initial(campaign: Campaign, workspace) -> dict:
    variants = campaign.variants or []
    send_at = campaign.send_at
    if send_at is not None:
        send_at = send_at.astimezone(zoneinfo.ZoneInfo(workspace.timezone or "UTC"))
        send_at = send_at.replace(tzinfo=None)
    return {
        "name": campaign.name,
        "channel": campaign.channel,
        "template": variants[0]["template_id"] if variants else None,
        "template_b": variants[1]["template_id"] if len(variants) > 1 else None,
        "weight_a": variants[0]["weight"] if len(variants) > 1 else 50,
        "audiences": campaign.audience_ids,
        "exclusions": campaign.excluded_audience_ids,
        "send_at": send_at,
        "local_date": campaign.local_date,
        "local_time": campaign.local_time,
        "throttle_per_minute": campaign.throttle_per_minute,
        "send_to_topic": campaign.send_to_topic,
    }


@require_http_methods(["GET", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def campaign_new(request):
    return _builder(request, None)


@require_http_methods(["GET", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def campaign_edit(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, id=campaign_id)
    if campaign.status != Campaign.Status.DRAFT:
        flash.error(request, f"The campaign is {campaign.status}; only a draft can be edited.")
        return redirect("dashboard:campaign_detail", request.workspace.id, campaign.id)
    return _builder(request, campaign)


def _builder(request, campaign: Campaign | None):
    initial = _initial(campaign, request.workspace) if campaign is not None else None
    form = CampaignForm(request.POST or None, workspace=request.workspace, initial=initial)
    estimate = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            values = form.values()
            try:
                if request.POST.get("action") == "estimate":
                    found = campaigns.campaign_estimate(workspace=request.workspace, values=values)
                    estimate = campaigns.estimate_words(found, values["channel"])
                elif campaign is not None:
                    campaign = campaigns.campaign_update(
                        campaign=campaign, values=values, actor=request.actor
                    )
                    flash.success(request, f"{campaign.name} is saved.")
                    return redirect("dashboard:campaign_detail", request.workspace.id, campaign.id)
                else:
                    campaign = campaigns.campaign_create(
                        workspace=request.workspace, values=values, actor=request.actor
                    )
                    flash.success(request, f"{campaign.name} is saved as a draft.")
                    return redirect("dashboard:campaign_detail", request.workspace.id, campaign.id)
            except ServiceError as error:
                _show_error(form, error)
                status = error.status
        else:
            status = 400
        if request.headers.get("HX-Request") and request.POST.get("action") == "estimate":
            return render(
                request, "messaging/campaigns/_estimate.html",
                {"estimate": estimate, "form": form}, status=200,
            )  # fmt: skip
    context = {"form": form, "estimate": estimate, "campaign": campaign,
               "active_section": "campaigns"}  # fmt: skip
    return render(request, "messaging/campaigns/form.html", context, status=status)


def _progress_context(campaign: Campaign) -> dict:
    progress = campaigns.campaign_progress(campaign)
    return {
        "campaign": campaign,
        "progress": progress,
        "groups": progress.groups,
        "is_live": campaign.status not in FINAL and campaign.status != Campaign.Status.DRAFT,
    }


COLOURS = ("#6172f3", "#12b76a", "#7a5af8", "#f79009", "#f04438")
CHART_COLOURS = dict(zip(campaigns.STAT_STATUSES, COLOURS, strict=True))


def _chart(series: list[dict], peak: int) -> list[dict]:
    """Per hour, one bar per stage, as inline-SVG geometry (a 100-unit column each, bars up
    to 100 high on a 110 baseline)."""
    columns = []
    for index, hour in enumerate(series):
        bars = []
        for position, name in enumerate(campaigns.STAT_STATUSES):
            height = round(hour[name] * 100 / peak)
            bars.append({
                "name": name, "count": hour[name], "height": height, "colour": CHART_COLOURS[name],
                "x": index * 100 + 10 + position * 16, "y": 110 - height,
            })  # fmt: skip
        columns.append({"hour": hour["hour"], "bars": bars, "label_x": index * 100 + 10})
    return columns


@require_safe
@workspace_view(permission=Permission.READ)
def campaign_detail(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, id=campaign_id)
    stats = campaigns.campaign_stats(campaign)
    estimate = None
    if campaign.status == Campaign.Status.DRAFT:
        try:
            found = campaigns.campaign_estimate(workspace=request.workspace, values=campaign)
            estimate = campaigns.estimate_words(found, campaign.channel)
        except ServiceError as error:
            estimate = error.message
    templates = dict(
        Template.objects.filter(id__in=[v["template_id"] for v in campaign.variants]).values_list(
            "id", "name"
        )
    )
    from audiences.models import Audience

    names = dict(
        Audience.objects.filter(
            id__in=[*campaign.audience_ids, *campaign.excluded_audience_ids]
        ).values_list("id", "name")
    )
    peak = max([1, *(max(hour[k] for k in campaigns.STAT_STATUSES) for hour in stats.series)])
    context = _progress_context(campaign) | {
        "stats": stats,
        "chart": _chart(stats.series, peak),
        "chart_width": 100 * max(1, len(stats.series)),
        "estimate": estimate,
        "variants": [v | {"template": templates.get(v["template_id"], "?")}
                     for v in campaign.variants],
        "audiences": [names.get(i, f"#{i}") for i in campaign.audience_ids],
        "exclusions": [names.get(i, f"#{i}") for i in campaign.excluded_audience_ids],
        "active_section": "campaigns",
    }  # fmt: skip
    return render(request, "messaging/campaigns/detail.html", context)


@require_safe
@workspace_view(permission=Permission.READ)
def campaign_progress(request, campaign_id: int):
    campaign = get_object_or_404(Campaign, id=campaign_id)
    return render(request, "messaging/campaigns/_progress.html", _progress_context(campaign))


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def campaign_action(request, campaign_id: int, action: str):
    campaign = get_object_or_404(Campaign, id=campaign_id)
    try:
        if action == "delete":
            campaigns.campaign_delete(campaign=campaign, actor=request.actor)
            flash.success(request, f"{campaign.name} is deleted.")
            return redirect("dashboard:campaigns", request.workspace.id)
        if action not in ACTIONS:
            return redirect("dashboard:campaign_detail", request.workspace.id, campaign.id)
        service, done = ACTIONS[action]
        service(campaign=campaign, actor=request.actor)
        flash.success(request, f"{campaign.name} {done}.")
    except ServiceError as error:
        flash.error(request, error.message[:1].upper() + error.message[1:] + ".")
    return redirect("dashboard:campaign_detail", request.workspace.id, campaign.id)
