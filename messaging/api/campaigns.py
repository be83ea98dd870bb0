"""Campaigns in the API: `/api/v1/messaging/campaigns` (list, create), `…/<id>` (get with
progress, PATCH and DELETE of a draft), `…/estimate` and `…/<id>/estimate`, and the actions
schedule, send, pause, resume, cancel, and stats. Views translate; messaging.campaigns
decides (a state error is a 409 naming the campaign's status)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from masivo.tenancy.api.pagination import CreatedCursorPagination
from masivo.tenancy.api.serializers import ServiceErrorOut
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField
from masivo.tenancy.api.views import WorkspaceAPIView
from messaging import campaigns
from messaging.models import Campaign, Channel, MessageKind
from messaging.policy import DECISION_CODES

MAX_ID = 2**63 - 1
CONFLICT = OpenApiResponse(ServiceErrorOut, description="the campaign's status does not allow it")


class VariantIn(RefusesUnknownFields):
    name = StrictCharField(max_length=40, required=False, help_text="A, B, … by default")
    template_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    weight = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="percent; the weights sum to 100"
    )


class CampaignIn(RefusesUnknownFields):
    name = StrictCharField(max_length=200)
    channel = serializers.ChoiceField(Channel.choices)
    kind = serializers.ChoiceField(MessageKind.choices, default=MessageKind.MARKETING)
    audience_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=campaigns.MAX_AUDIENCES,
        help_text="members of any of these audiences receive it",
    )
    excluded_audience_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        max_length=campaigns.MAX_AUDIENCES,
        required=False,
        help_text="minus members of any of these",
    )
    template_id = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, help_text="one template (no A/B test)"
    )
    variants = VariantIn(many=True, required=False, help_text="A/B variants instead of template_id")
    send_to_topic = serializers.BooleanField(
        required=False,
        help_text="push only, one audience with a push topic: one send to its FCM topic, "
        "without personalization or the contact policy",
    )
    send_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="when to start (schedule)"
    )
    local_date = serializers.DateField(required=False, allow_null=True)
    local_time = serializers.TimeField(
        required=False,
        allow_null=True,
        help_text="with local_date: each customer gets it at this time in their own zone",
    )
    throttle_per_minute = serializers.IntegerField(
        min_value=1, max_value=10**6, required=False, allow_null=True
    )


class ProgressOut(serializers.Serializer):
    total = serializers.IntegerField(help_text="recipients snapshotted")
    done = serializers.IntegerField(help_text="no longer pending")
    percent = serializers.IntegerField()
    queued = serializers.IntegerField(help_text="queued or being handed over")
    deferred = serializers.IntegerField()
    paused = serializers.IntegerField()
    sent = serializers.IntegerField(help_text="handed over (and delivered, opened, …)")
    failed = serializers.IntegerField(help_text="failed or bounced")
    suppressed = serializers.IntegerField()
    canceled = serializers.IntegerField()


def progress_data(campaign: Campaign) -> dict:
    progress = campaigns.campaign_progress(campaign)
    return {"total": progress.total, "done": progress.done, "percent": progress.percent,
            **progress.groups}  # fmt: skip


class VariantOut(serializers.Serializer):
    name = serializers.CharField()
    template_id = serializers.IntegerField()
    weight = serializers.IntegerField()


class CampaignOut(serializers.ModelSerializer):
    variants = VariantOut(many=True)
    audience_ids = serializers.ListField(child=serializers.IntegerField())
    excluded_audience_ids = serializers.ListField(child=serializers.IntegerField())
    decision_counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="recipients per contact-policy decision code"
    )

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "channel", "kind", "status", "audience_ids", "excluded_audience_ids",
            "variants", "send_to_topic", "send_at", "local_date", "local_time",
            "throttle_per_minute", "recipients", "decision_counts", "topic_message_id", "error",
            "started_at", "paused_at", "finished_at", "created_by", "created_at", "updated_at",
        ]  # fmt: skip


class CampaignDetailOut(CampaignOut):
    progress = serializers.SerializerMethodField()

    class Meta(CampaignOut.Meta):
        fields = [*CampaignOut.Meta.fields, "progress"]

    @extend_schema_field(ProgressOut)
    def get_progress(self, campaign) -> dict:
        return progress_data(campaign)


class EstimateOut(serializers.Serializer):
    total = serializers.IntegerField(help_text="recipients: members minus exclusions, each once")
    reachable = serializers.IntegerField(help_text="sendable now or after quiet hours")
    by_code = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=f"recipients per decision code ({', '.join(DECISION_CODES)})",
    )
    summary = serializers.CharField(
        help_text='"12,430 of 14,002 reachable: 1,204 no consent, 368 no email address"'
    )


class MovedOut(serializers.Serializer):
    campaign = CampaignDetailOut()
    messages = serializers.IntegerField(help_text="messages this action moved")


class StatCountsOut(serializers.Serializer):
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    bounced = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()


class StatRatesOut(serializers.Serializer):
    delivered = serializers.FloatField()
    opened = serializers.FloatField()
    clicked = serializers.FloatField()
    bounced = serializers.FloatField()
    unsubscribed = serializers.FloatField()


class StatHourOut(serializers.Serializer):
    hour = serializers.DateTimeField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    bounced = serializers.IntegerField()


class StatsOut(serializers.Serializer):
    counts = StatCountsOut()
    rates = StatRatesOut(help_text="over the messages sent")
    series = StatHourOut(many=True, help_text="messages reaching each stage, per hour (UTC)")
    variants = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="counts per A/B variant",
    )


def _validated(data, *, partial=False) -> dict:
    serializer = CampaignIn(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    values = dict(serializer.validated_data)
    if "variants" in values:
        values["variants"] = [dict(variant) for variant in values["variants"]]
    return values


def _estimate_data(estimate, channel: str) -> dict:
    return {
        "total": estimate.total,
        "reachable": estimate.reachable,
        "by_code": estimate.by_code,
        "summary": campaigns.estimate_words(estimate, channel),
    }


class CampaignView(WorkspaceAPIView):
    serializer_class = CampaignOut
    path_model = Campaign

    def get_queryset(self):
        return campaigns.campaigns_list()

    def detail(self, campaign: Campaign, status_code=200) -> Response:
        fresh = Campaign.objects.get(id=campaign.id)
        return Response(CampaignDetailOut(fresh).data, status=status_code)


class CampaignListView(CampaignView):
    pagination_class = CreatedCursorPagination

    def get_queryset(self):
        return Campaign.objects.all()

    @extend_schema(responses=CampaignOut(many=True), summary="Campaigns, newest first")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CampaignOut(page, many=True).data)

    @extend_schema(
        request=CampaignIn,
        responses={201: CampaignDetailOut},
        summary="Create a draft campaign",
        description="A template (`template_id`) or A/B `variants` to the members of "
        "`audience_ids` minus those of `excluded_audience_ids`. Then schedule it or send it.",
    )
    def post(self, request):
        campaign = campaigns.campaign_create(
            workspace=self.workspace, values=_validated(request.data), actor=self.actor
        )
        return self.detail(campaign, status.HTTP_201_CREATED)


class CampaignDetailView(CampaignView):
    serializer_class = CampaignDetailOut

    @extend_schema(responses=CampaignDetailOut, summary="One campaign, with its progress")
    def get(self, request, id):
        return self.detail(self.get_object())

    @extend_schema(
        request=CampaignIn(partial=True),
        responses={200: CampaignDetailOut, 409: CONFLICT},
        summary="Change a draft (the fields given)",
    )
    def patch(self, request, id):
        campaign = campaigns.campaign_update(
            campaign=self.get_object(), values=_validated(request.data, partial=True),
            actor=self.actor,
        )  # fmt: skip
        return self.detail(campaign)

    @extend_schema(request=None, responses={204: None, 409: CONFLICT}, summary="Delete a draft")
    def delete(self, request, id):
        campaigns.campaign_delete(campaign=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignEstimateView(CampaignView):
    serializer_class = EstimateOut

    @extend_schema(
        request=CampaignIn,
        responses=EstimateOut,
        summary="How many a campaign being built would reach, after the contact policy",
    )
    def post(self, request):
        values = _validated(request.data)
        estimate = campaigns.campaign_estimate(workspace=self.workspace, values=values)
        return Response(_estimate_data(estimate, values["channel"]))


class CampaignSavedEstimateView(CampaignView):
    serializer_class = EstimateOut

    @extend_schema(responses=EstimateOut, summary="How many a saved campaign would reach now")
    def get(self, request, id):
        campaign = self.get_object()
        estimate = campaigns.campaign_estimate(workspace=self.workspace, values=campaign)
        return Response(_estimate_data(estimate, campaign.channel))


class CampaignScheduleView(CampaignView):
    serializer_class = CampaignDetailOut

    @extend_schema(
        request=None,
        responses={200: CampaignDetailOut, 409: CONFLICT},
        summary="Schedule a draft for its send_at (or its local time)",
    )
    def post(self, request, id):
        campaign = campaigns.campaign_schedule(campaign=self.get_object(), actor=self.actor)
        return self.detail(campaign)


class CampaignSendView(CampaignView):
    serializer_class = CampaignDetailOut

    @extend_schema(
        request=None,
        responses={202: CampaignDetailOut, 409: CONFLICT},
        summary="Start a draft or scheduled campaign now",
    )
    def post(self, request, id):
        campaign = campaigns.campaign_send_now(campaign=self.get_object(), actor=self.actor)
        return self.detail(campaign, status.HTTP_202_ACCEPTED)


class _MoveView(CampaignView):
    serializer_class = MovedOut
    move = None

    def post(self, request, id):
        moved = self.move(campaign=self.get_object(), actor=self.actor)
        fresh = Campaign.objects.get(id=moved.campaign.id)
        return Response(MovedOut({"campaign": fresh, "messages": moved.messages}).data)


class CampaignPauseView(_MoveView):
    move = staticmethod(campaigns.campaign_pause)

    @extend_schema(
        request=None,
        responses={200: MovedOut, 409: CONFLICT},
        summary="Pause a sending campaign (its pending messages are held)",
    )
    def post(self, request, id):
        return super().post(request, id)


class CampaignResumeView(_MoveView):
    move = staticmethod(campaigns.campaign_resume)

    @extend_schema(
        request=None,
        responses={200: MovedOut, 409: CONFLICT},
        summary="Resume a paused campaign",
    )
    def post(self, request, id):
        return super().post(request, id)


class CampaignCancelView(_MoveView):
    move = staticmethod(campaigns.campaign_cancel)

    @extend_schema(
        request=None,
        responses={200: MovedOut, 409: CONFLICT},
        summary="Cancel a scheduled, sending or paused campaign (pending messages canceled)",
    )
    def post(self, request, id):
        return super().post(request, id)


class CampaignStatsView(CampaignView):
    serializer_class = StatsOut

    @extend_schema(
        responses=StatsOut, summary="Delivered, opened, clicked, bounced, unsubscribed, over time"
    )
    def get(self, request, id):
        stats = campaigns.campaign_stats(self.get_object())
        data = {"counts": stats.counts, "rates": stats.rates, "series": stats.series,
                "variants": stats.variants}  # fmt: skip
        return Response(StatsOut(data).data)
