"""Webhook endpoints in the API: `/api/v1/destinations/webhooks` (list, create), `…/<id>` (get,
PATCH, DELETE), `…/<id>/rotate-secret`, `…/<id>/test`, and the delivery log `…/<id>/deliveries`
(filter by status, topic), `…/<id>/deliveries/<delivery id>` (with attempts) and its `/replay`.

An endpoint is a destination of kind `webhook`. Its secret is in the response that creates it
(or rotates it) and never again: other responses carry only `secret_hint`. Managing endpoints
is a workspace setting (admins and owners); replaying a delivery is marketing work; every role
reads. Views translate; destinations.webhooks decides.
"""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from destinations import webhooks
from destinations.api.serializers import validated
from destinations.connectors.webhook import MAX_EVENT_NAMES, TOPICS
from destinations.models import Destination, WebhookDelivery
from masivo.tenancy.api.pagination import CreatedCursorPagination
from masivo.tenancy.api.serializers import ServiceErrorOut
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField
from masivo.tenancy.api.views import WorkspaceAPIView
from masivo.tenancy.errors import InvalidInput
from masivo.tenancy.roles import Permission

CONFLICT = OpenApiResponse(
    ServiceErrorOut, description="the endpoint or delivery does not allow it"
)


class WebhookEndpointIn(RefusesUnknownFields):
    name = StrictCharField(max_length=200)
    url = StrictCharField(
        max_length=2000,
        help_text="http(s) URL; private, loopback, link-local and metadata addresses are refused",
    )
    topics = serializers.ListField(
        child=serializers.ChoiceField(TOPICS), min_length=1, max_length=len(TOPICS),
        help_text=f"any of {', '.join(TOPICS)}",
    )  # fmt: skip
    event_names = serializers.ListField(
        child=StrictCharField(max_length=200), required=False, max_length=MAX_EVENT_NAMES,
        help_text="event.tracked only for these event names (empty: every event)",
    )  # fmt: skip
    description = StrictCharField(max_length=500, required=False, allow_blank=True)


class WebhookEndpointOut(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    topics = serializers.SerializerMethodField()
    event_names = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    secret_hint = serializers.SerializerMethodField(help_text='"whsec_…Ab12": the newest secret')
    previous_secret_expires_at = serializers.SerializerMethodField(
        help_text="after a rotation, until when the previous secret also signs (null: none)"
    )

    class Meta:
        model = Destination
        fields = [
            "id", "name", "key", "url", "topics", "event_names", "description", "status",
            "disabled_reason", "secret_hint", "previous_secret_expires_at", "created_by",
            "created_at", "updated_at",
        ]  # fmt: skip

    def get_url(self, destination) -> str:
        return destination.config.get("url", "")

    def get_topics(self, destination) -> list[str]:
        return list(destination.config.get("topics") or [])

    def get_event_names(self, destination) -> list[str]:
        return list(destination.config.get("event_names") or [])

    def get_description(self, destination) -> str:
        return destination.config.get("description", "")

    def get_secret_hint(self, destination) -> str:
        return webhooks.endpoint_secret_hint(destination)

    def get_previous_secret_expires_at(self, destination) -> str | None:
        expires_at = webhooks.previous_secret_expires_at(destination)
        return serializers.DateTimeField().to_representation(expires_at) if expires_at else None


class WebhookEndpointCreatedOut(WebhookEndpointOut):
    secret = serializers.CharField(help_text="whsec_…: shown this once")

    class Meta(WebhookEndpointOut.Meta):
        fields = [*WebhookEndpointOut.Meta.fields, "secret"]


class WebhookSecretOut(serializers.Serializer):
    secret = serializers.CharField(help_text="the new whsec_… secret: shown this once")
    secret_hint = serializers.CharField()
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="until then both secrets sign each delivery"
    )


class WebhookDeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "webhook_id", "topic", "status", "attempts", "next_attempt_at",
            "last_status_code", "last_error", "created_at", "delivered_at",
        ]  # fmt: skip


class WebhookAttemptOut(serializers.Serializer):
    at = serializers.DateTimeField()
    attempt = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)


class WebhookDeliveryDetailOut(WebhookDeliveryOut):
    payload = serializers.JSONField(help_text="the body sent: {type, timestamp, data}")
    history = WebhookAttemptOut(many=True, help_text="attempts, oldest first (the last 50)")

    class Meta(WebhookDeliveryOut.Meta):
        fields = [*WebhookDeliveryOut.Meta.fields, "payload", "last_response", "history"]


class WebhookTestOut(serializers.Serializer):
    ok = serializers.BooleanField(help_text="the endpoint answered 2xx")
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    delivery = WebhookDeliveryDetailOut()


class WebhookEndpointView(WorkspaceAPIView):
    serializer_class = WebhookEndpointOut
    path_model = Destination
    write_permission = Permission.MANAGE_DESTINATIONS

    def get_queryset(self):
        return webhooks.webhook_endpoints_list()

    def detail(self, destination, status_code=200) -> Response:
        fresh = self.get_queryset().get(id=destination.id)
        return Response(WebhookEndpointOut(fresh).data, status=status_code)


class WebhookEndpointListView(WebhookEndpointView):
    pagination_class = CreatedCursorPagination

    @extend_schema(responses=WebhookEndpointOut(many=True), summary="Webhook endpoints")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookEndpointOut(page, many=True).data)

    @extend_schema(
        request=WebhookEndpointIn,
        responses={201: WebhookEndpointCreatedOut},
        summary="Create a webhook endpoint; its signing secret is shown once",
    )
    def post(self, request):
        data = validated(WebhookEndpointIn, request.data)
        created = webhooks.webhook_endpoint_create(workspace=self.workspace, actor=self.actor,
                                                   **data)  # fmt: skip
        fresh = self.get_queryset().get(id=created.destination.id)
        fresh.secret = created.secret
        return Response(WebhookEndpointCreatedOut(fresh).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailView(WebhookEndpointView):
    @extend_schema(responses=WebhookEndpointOut, summary="One webhook endpoint")
    def get(self, request, id):
        return Response(WebhookEndpointOut(self.get_object()).data)

    @extend_schema(
        request=WebhookEndpointIn(partial=True),
        responses=WebhookEndpointOut,
        summary="Change name, url, topics, event_names or description (the fields given)",
    )
    def patch(self, request, id):
        data = validated(WebhookEndpointIn, request.data, partial=True)
        destination = webhooks.webhook_endpoint_update(destination=self.get_object(),
                                                       actor=self.actor, **data)  # fmt: skip
        return self.detail(destination)

    @extend_schema(request=None, responses={204: None}, summary="Delete the endpoint and its log")
    def delete(self, request, id):
        webhooks.webhook_endpoint_delete(destination=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretView(WebhookEndpointView):
    serializer_class = WebhookSecretOut

    @extend_schema(
        request=None,
        responses=WebhookSecretOut,
        summary="A new signing secret, shown once; the previous one also signs for 24 hours",
    )
    def post(self, request, id):
        destination = self.get_object()
        secret = webhooks.webhook_secret_rotate(destination=destination, actor=self.actor)
        return Response(WebhookSecretOut({
            "secret": secret,
            "secret_hint": webhooks.endpoint_secret_hint(destination),
            "previous_secret_expires_at": webhooks.previous_secret_expires_at(destination),
        }).data)  # fmt: skip


class WebhookTestView(WebhookEndpointView):
    serializer_class = WebhookTestOut

    @extend_schema(
        request=None,
        responses=WebhookTestOut,
        summary="Send a webhook.test delivery now and say how the endpoint answered",
    )
    def post(self, request, id):
        delivery = webhooks.webhook_test_send(destination=self.get_object(), actor=self.actor)
        return Response(WebhookTestOut({
            "ok": delivery.status == WebhookDelivery.Status.SUCCEEDED,
            "status_code": delivery.last_status_code,
            "error": delivery.last_error,
            "delivery": delivery,
        }).data)  # fmt: skip


class WebhookDeliveriesView(WebhookEndpointView):
    serializer_class = WebhookDeliveryOut
    pagination_class = CreatedCursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("status", enum=WebhookDelivery.Status.values, required=False),
            OpenApiParameter("topic", enum=TOPICS, required=False),
        ],
        responses=WebhookDeliveryOut(many=True),
        summary="The endpoint's deliveries, newest first",
    )
    def get(self, request, id):
        status_filter = request.query_params.get("status", "")
        topic = request.query_params.get("topic", "")
        if status_filter and status_filter not in WebhookDelivery.Status.values:
            raise InvalidInput(f"one of {', '.join(WebhookDelivery.Status.values)}",
                               field="status")  # fmt: skip
        if topic and topic not in (*TOPICS, "webhook.test"):
            raise InvalidInput(f"one of {', '.join(TOPICS)}, webhook.test", field="topic")
        deliveries = webhooks.webhook_deliveries_list(
            destination=self.get_object(), status=status_filter, topic=topic
        )
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(WebhookDeliveryOut(page, many=True).data)


class _DeliveryView(WebhookEndpointView):
    serializer_class = WebhookDeliveryDetailOut

    def delivery(self, id, delivery_id) -> WebhookDelivery:
        destination = self.get_object()
        found = webhooks.webhook_deliveries_list(destination=destination).filter(id=delivery_id)
        delivery = found.select_related("destination").first()
        if delivery is None:
            raise Http404("no such delivery")
        return delivery


class WebhookDeliveryDetailView(_DeliveryView):
    @extend_schema(responses=WebhookDeliveryDetailOut, summary="One delivery, with its attempts")
    def get(self, request, id, delivery_id):
        return Response(WebhookDeliveryDetailOut(self.delivery(id, delivery_id)).data)


class WebhookDeliveryReplayView(_DeliveryView):
    write_permission = Permission.EDIT_MARKETING

    @extend_schema(
        request=None,
        responses={202: WebhookDeliveryDetailOut, 409: CONFLICT},
        summary="Send a delivery again (same webhook-id), from a new retry schedule",
    )
    def post(self, request, id, delivery_id):
        delivery = webhooks.delivery_replay(delivery=self.delivery(id, delivery_id),
                                            actor=self.actor)  # fmt: skip
        return Response(WebhookDeliveryDetailOut(delivery).data, status=status.HTTP_202_ACCEPTED)
