"""Messages (send one, the log, one message with its history), the suppression list and the
contact policy settings in the API. Views translate; messaging.outbox and messaging.policy
decide."""

from datetime import UTC

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from masivo.tenancy.api.pagination import CreatedCursorPagination
from masivo.tenancy.api.serializers import ServiceErrorOut
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField
from masivo.tenancy.api.views import WorkspaceAPIView
from masivo.tenancy.roles import Permission
from messaging import outbox
from messaging.models import Channel, Message, MessageKind, MessageStatus, Suppression, Template
from messaging.policy import DECISION_CODES
from messaging.policy.settings import (
    MAX_CAP_LIMIT,
    MAX_CAPS,
    MAX_WINDOW_HOURS,
    contact_policy_get,
    contact_policy_update,
)
from messaging.policy.suppressions import suppression_add, suppression_remove, suppressions_list
from messaging.policy.vocabulary import ADDRESSED_CHANNELS
from profiles.models import Customer

HH_MM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_ID = 2**63 - 1  # bigint: a larger id is a 400, not a database error
ID_PARAM = {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}


class DecisionOut(serializers.Serializer):
    code = serializers.ChoiceField(DECISION_CODES, help_text="the contact policy's answer")
    text = serializers.CharField(help_text="the same in words, as the message log shows it")


class MessageOut(serializers.ModelSerializer):
    customer_id = serializers.IntegerField()
    template_id = serializers.IntegerField(allow_null=True)
    template_version_id = serializers.IntegerField(allow_null=True)
    decision = serializers.SerializerMethodField()
    origin = serializers.DictField(help_text='where the send came from: {"source": "api"}, …')

    class Meta:
        model = Message
        fields = [
            "id", "customer_id", "channel", "kind", "status", "decision", "address",
            "template_id", "template_version_id", "dedupe_key", "origin", "due_at", "sent_at",
            "provider", "provider_message_id", "error_code", "error", "created_at", "updated_at",
        ]  # fmt: skip

    @extend_schema_field(DecisionOut)
    def get_decision(self, message) -> dict:
        return {"code": message.decision_code, "text": message.decision}


class StatusChangeOut(serializers.Serializer):
    status = serializers.ChoiceField(MessageStatus.choices)
    detail = serializers.CharField()
    at = serializers.DateTimeField()


class MessageDetailOut(MessageOut):
    status_history = serializers.SerializerMethodField()
    render_input = serializers.DictField(help_text="the triggering event's properties, if any")
    payload = serializers.DictField(help_text="what was handed over (subject, bodies, …)")

    class Meta(MessageOut.Meta):
        fields = [*MessageOut.Meta.fields, "render_input", "payload", "status_history"]

    @extend_schema_field(StatusChangeOut(many=True))
    def get_status_history(self, message) -> list:
        changes = message.status_changes.order_by("at", "id")
        return StatusChangeOut(changes, many=True).data


class MessageSendIn(RefusesUnknownFields):
    customer_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    external_id = StrictCharField(max_length=255, required=False)
    email = StrictCharField(max_length=254, required=False)
    channel = serializers.ChoiceField(Channel.choices)
    template_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    kind = serializers.ChoiceField(MessageKind.choices, default=MessageKind.TRANSACTIONAL)
    event = serializers.DictField(
        required=False, help_text="the triggering event's properties, for the template"
    )

    def validate(self, data):
        given = [name for name in ("customer_id", "external_id", "email") if name in data]
        if len(given) != 1:
            raise exceptions.ValidationError(
                {"customer_id": ["exactly one of customer_id, external_id or email"]}
            )
        return data


def _customer(data: dict) -> Customer:
    customers = Customer.objects.all()
    if "customer_id" in data:
        customer = customers.filter(id=data["customer_id"]).first()
    elif "external_id" in data:
        customer = customers.filter(external_id=data["external_id"]).first()
    else:
        customer = customers.filter(email=data["email"].strip().lower()).first()
    if customer is None:
        raise exceptions.NotFound("no such customer in this workspace")
    return customer


def _template(template_id: int) -> Template:
    template = Template.objects.filter(id=template_id).first()
    if template is None:
        raise exceptions.NotFound("no such template in this workspace")
    return template


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) < 1:
        raise exceptions.ValidationError({name: ["a whole number, 1 or more"]})
    return int(raw)


def _choice_param(request, name: str, choices) -> str | None:
    raw = request.query_params.get(name)
    if raw is not None and raw not in choices:
        raise exceptions.ValidationError({name: [f"one of {', '.join(choices)}"]})
    return raw


def _datetime_param(request, name: str):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise exceptions.ValidationError(
            {name: ["an ISO 8601 date-time with a time zone (Z or ±hh:mm)"]}
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError as error:
        raise exceptions.ValidationError({name: ["an ISO 8601 date-time"]}) from error


class MessageListView(WorkspaceAPIView):
    serializer_class = MessageOut
    pagination_class = CreatedCursorPagination

    def get_queryset(self):
        request = self.request
        messages = Message.objects.all()
        filters = {
            "customer_id": _int_param(request, "customer"),
            "template_id": _int_param(request, "template"),
            "campaign_id": _int_param(request, "campaign"),
            "origin__journey": _int_param(request, "journey"),
            "channel": _choice_param(request, "channel", Channel.values),
            "status": _choice_param(request, "status", MessageStatus.values),
            "decision_code": _choice_param(request, "decision", DECISION_CODES),
            "origin__source": request.query_params.get("source"),
            "created_at__gte": _datetime_param(request, "created_after"),
            "created_at__lt": _datetime_param(request, "created_before"),
        }
        return messages.filter(**{name: value for name, value in filters.items() if value})

    @extend_schema(
        parameters=[
            OpenApiParameter("customer", ID_PARAM, description="a customer's id"),
            OpenApiParameter("channel", str, enum=Channel.values),
            OpenApiParameter("status", str, enum=MessageStatus.values),
            OpenApiParameter("decision", str, enum=list(DECISION_CODES)),
            OpenApiParameter("template", ID_PARAM, description="a template's id"),
            OpenApiParameter("campaign", ID_PARAM, description="a campaign's id"),
            OpenApiParameter("journey", ID_PARAM, description="a journey's id"),
            OpenApiParameter("source", str, description="api, campaign, journey or test"),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="inclusive"),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="exclusive"),
        ],
        responses=MessageOut(many=True),
        summary="The message log, newest first",
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(MessageOut(page, many=True).data)

    @extend_schema(
        request=MessageSendIn,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="up to 255 characters; the same key answers the same message",
            )
        ],
        responses={
            201: MessageOut,
            200: OpenApiResponse(MessageOut, description="the key's message, sent before"),
            404: OpenApiResponse(ServiceErrorOut, description="no such customer or template"),
            409: OpenApiResponse(
                ServiceErrorOut, description="the key was used for another request"
            ),
        },
        summary="Send a template to one customer now (transactional or marketing)",
        description="The contact policy decides at once: the answer's `status` is `queued`, "
        "`deferred` (quiet hours: `due_at` says until when) or `suppressed`, and `decision` "
        "says why. Transactional messages skip consent, frequency caps and quiet hours, but "
        "never a hard bounce.",
    )
    def post(self, request):
        key = request.headers.get(IDEMPOTENCY_HEADER)
        outbox.api_dedupe_key(key)  # a missing or malformed key is a 400 before anything else
        serializer = MessageSendIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        enqueued = outbox.message_send(
            customer=_customer(data),
            channel=data["channel"],
            kind=data["kind"],
            template=_template(data["template_id"]),
            event=data.get("event"),
            idempotency_key=key,
        )
        code = status.HTTP_201_CREATED if enqueued.is_new else status.HTTP_200_OK
        return Response(MessageOut(enqueued.message).data, status=code)


class MessageDetailView(WorkspaceAPIView):
    serializer_class = MessageDetailOut
    path_model = Message

    def get_queryset(self):
        return Message.objects.all()

    @extend_schema(
        responses=MessageDetailOut, summary="One message, with its decision and status history"
    )
    def get(self, request, id):
        return Response(MessageDetailOut(self.get_object()).data)


class SuppressionOut(serializers.ModelSerializer):
    message_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = Suppression
        fields = ["id", "channel", "address", "reason", "source", "detail", "message_id",
                  "created_at"]  # fmt: skip


class SuppressionIn(RefusesUnknownFields):
    channel = serializers.ChoiceField([str(channel) for channel in ADDRESSED_CHANNELS])
    address = StrictCharField(max_length=320, help_text="an email address or an E.164 phone")
    reason = serializers.ChoiceField(Suppression.Reason.choices, default=Suppression.Reason.MANUAL)
    detail = StrictCharField(max_length=500, required=False, allow_blank=True)


class SuppressionView(WorkspaceAPIView):
    serializer_class = SuppressionOut
    path_model = Suppression

    def get_queryset(self):
        return Suppression.objects.order_by("-id")


class SuppressionListView(SuppressionView):
    pagination_class = CreatedCursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("channel", str, enum=[str(c) for c in ADDRESSED_CHANNELS]),
            OpenApiParameter("reason", str, enum=Suppression.Reason.values),
            OpenApiParameter("address", str, description="an address or its beginning"),
        ],
        responses=SuppressionOut(many=True),
        summary="The suppression list, newest first",
    )
    def get(self, request):
        suppressions = suppressions_list(
            channel=_choice_param(request, "channel", [str(c) for c in ADDRESSED_CHANNELS]),
            reason=_choice_param(request, "reason", Suppression.Reason.values),
            address=request.query_params.get("address"),
        )
        page = self.paginate_queryset(suppressions)
        return self.get_paginated_response(SuppressionOut(page, many=True).data)

    @extend_schema(
        request=SuppressionIn,
        responses={
            201: SuppressionOut,
            409: OpenApiResponse(ServiceErrorOut, description="the address is already listed"),
        },
        summary="Suppress an address on a channel",
    )
    def post(self, request):
        serializer = SuppressionIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        suppression, _ = suppression_add(
            workspace=self.workspace,
            channel=data["channel"],
            address=data["address"],
            reason=data["reason"],
            detail=data.get("detail", ""),
            source=f"api:{self.actor.label}"[:100],
            actor=self.actor,
        )
        return Response(SuppressionOut(suppression).data, status=status.HTTP_201_CREATED)


class SuppressionDetailView(SuppressionView):
    @extend_schema(responses=SuppressionOut, summary="One suppressed address")
    def get(self, request, id):
        return Response(SuppressionOut(self.get_object()).data)

    @extend_schema(request=None, responses={204: None}, summary="Remove an address from the list")
    def delete(self, request, id):
        suppression_remove(suppression=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CapIn(RefusesUnknownFields):
    channel = serializers.ChoiceField([*Channel.values, "*"], help_text="* counts every channel")
    limit = serializers.IntegerField(min_value=1, max_value=MAX_CAP_LIMIT)
    window_hours = serializers.IntegerField(min_value=1, max_value=MAX_WINDOW_HOURS)


@extend_schema_field({"type": "string", "pattern": HH_MM, "example": "21:00"})
class ClockField(serializers.TimeField):
    """A time of day as HH:MM, as the settings take it."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", **kwargs)


class ContactPolicyOut(serializers.Serializer):
    frequency_caps = CapIn(many=True)
    quiet_hours_enabled = serializers.BooleanField()
    quiet_hours_start = ClockField()
    quiet_hours_end = ClockField()
    quiet_hours_action = serializers.ChoiceField(["defer", "skip"])
    quiet_hours_channels = serializers.ListField(child=serializers.ChoiceField(Channel.values))
    updated_at = serializers.DateTimeField()


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "must be true or false"}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class ContactPolicyIn(RefusesUnknownFields):
    frequency_caps = CapIn(many=True, required=False, max_length=MAX_CAPS)
    quiet_hours_enabled = StrictBooleanField(required=False)
    quiet_hours_start = serializers.RegexField(HH_MM, required=False, help_text="HH:MM")
    quiet_hours_end = serializers.RegexField(HH_MM, required=False, help_text="HH:MM")
    quiet_hours_action = serializers.ChoiceField(["defer", "skip"], required=False)
    quiet_hours_channels = serializers.ListField(
        child=serializers.ChoiceField(Channel.values), required=False, max_length=5
    )


class ContactPolicyView(WorkspaceAPIView):
    serializer_class = ContactPolicyOut
    write_permission = Permission.MANAGE_WORKSPACE

    @extend_schema(responses=ContactPolicyOut, summary="Frequency caps and quiet hours")
    def get(self, request):
        return Response(ContactPolicyOut(contact_policy_get(workspace=self.workspace)).data)

    @extend_schema(
        request=ContactPolicyIn,
        responses=ContactPolicyOut,
        summary="Change frequency caps and quiet hours (the fields given; the others are kept)",
    )
    def put(self, request):
        serializer = ContactPolicyIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "frequency_caps" in changes:
            changes["frequency_caps"] = [dict(cap) for cap in changes["frequency_caps"]]
        policy = contact_policy_update(workspace=self.workspace, changes=changes, actor=self.actor)
        return Response(ContactPolicyOut(policy).data)
