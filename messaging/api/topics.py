"""Push topics per audience: `GET/POST /api/v1/messaging/push-topics`, `GET/DELETE …/<id>`."""

from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from masivo.tenancy.api.views import WorkspaceAPIView
from messaging import topics
from messaging.models import AudienceTopic


class TopicIn(serializers.Serializer):
    audience_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class TopicOut(serializers.ModelSerializer):
    subscriptions = serializers.IntegerField(
        source="subscription_count",
        read_only=True,
        help_text="device tokens subscribed at FCM, as far as Masivo knows",
    )
    backfill_done = serializers.SerializerMethodField(
        help_text="whether the members the audience had when the topic was made are subscribed"
    )

    class Meta:
        model = AudienceTopic
        fields = [
            "id", "audience_id", "topic", "status", "subscriptions", "backfill_done",
            "last_error", "last_synced_at", "created_by", "created_at",
        ]  # fmt: skip

    def get_backfill_done(self, topic) -> bool:
        return topic.backfilled_at is not None


class TopicView(WorkspaceAPIView):
    serializer_class = TopicOut
    path_model = AudienceTopic

    def get_queryset(self):
        topics = AudienceTopic.objects.annotate(subscription_count=Count("subscriptions"))
        return topics.order_by("-id")


class TopicListView(TopicView):
    @extend_schema(responses=TopicOut(many=True), summary="Push topics")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TopicOut(page, many=True).data)

    @extend_schema(
        request=TopicIn,
        responses={201: TopicOut},
        summary="Keep an audience's members subscribed to its FCM topic",
        description="The members' active devices with push consent are subscribed to "
        "`{workspace}_audience_{audience}` (the members it has now by a backfill, later ones as "
        "they enter) and unsubscribed when they leave, withdraw push consent or the device "
        "goes. Needs Firebase Cloud Messaging connected (409 otherwise).",
    )
    def post(self, request):
        serializer = TopicIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        topic = topics.topic_enable(
            workspace=self.workspace,
            audience_id=serializer.validated_data["audience_id"],
            actor=self.actor,
        )
        return Response(TopicOut(self.get_queryset().get(id=topic.id)).data, status=201)


class TopicDetailView(TopicView):
    @extend_schema(responses=TopicOut, summary="One push topic")
    def get(self, request, id):
        return Response(TopicOut(self.get_object()).data)

    @extend_schema(
        request=None,
        responses={202: TopicOut},
        summary="Remove a push topic (its devices are unsubscribed, then it is deleted)",
    )
    def delete(self, request, id):
        topic = topics.topic_remove(topic=self.get_object(), actor=self.actor)
        return Response(TopicOut(self.get_queryset().get(id=topic.id)).data, status=202)
