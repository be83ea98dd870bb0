"""Templates in the API: list, create, read with the current version, edit (a new version),
delete or archive, versions, and preview for a customer. Views translate; the work is in
messaging.template_services. Reading needs `read`; writing and previewing need edit marketing
(marketers, admins, owners)."""

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField
from masivo.tenancy.api.views import WorkspaceAPIView
from masivo.tenancy.errors import InvalidInput
from messaging import template_services as services
from messaging.models import Channel, Template, TemplateVersion
from messaging.templating import TemplateRenderError
from profiles.models import Customer

CONTENT_HELP = (
    "the channel's fields, each a Jinja2 template: email {subject, preheader, html, text}; "
    "push {title, body, image, deep_link, data}; whatsapp {content_sid, variables}; sms {body}; "
    "in_app {title, body, image, buttons, layout, expires_after_hours}"
)
LOCALES_HELP = "locale (es, es-MX) → the fields that differ for it"


class VersionOut(serializers.ModelSerializer):
    content = serializers.DictField(help_text=CONTENT_HELP)
    locales = serializers.DictField(help_text=LOCALES_HELP)

    class Meta:
        model = TemplateVersion
        fields = ["number", "content", "locales", "created_by", "created_at"]


class TemplateOut(serializers.ModelSerializer):
    current_version = serializers.IntegerField(
        source="current_number", help_text="the newest version's number, the one sends use"
    )

    class Meta:
        model = Template
        fields = [
            "id", "name", "channel", "description", "is_archived", "current_version",
            "created_at", "updated_at",
        ]  # fmt: skip


class TemplateDetailOut(TemplateOut):
    version = serializers.SerializerMethodField()

    class Meta(TemplateOut.Meta):
        fields = [*TemplateOut.Meta.fields, "version"]

    @extend_schema_field(VersionOut)
    def get_version(self, template) -> dict:
        return VersionOut(services.template_current_version(template)).data


class TemplateCreateIn(RefusesUnknownFields):
    name = StrictCharField(max_length=200)
    channel = serializers.ChoiceField(Channel.choices)
    description = StrictCharField(max_length=2000, required=False, allow_blank=True)
    content = serializers.DictField(help_text=CONTENT_HELP)
    locales = serializers.DictField(required=False, help_text=LOCALES_HELP)


class TemplateUpdateIn(RefusesUnknownFields):
    name = StrictCharField(max_length=200, required=False)
    description = StrictCharField(max_length=2000, required=False, allow_blank=True)
    content = serializers.DictField(
        required=False, help_text="replaces the content: writes a new version"
    )
    locales = serializers.DictField(
        required=False, help_text="replaces the locale variants: writes a new version"
    )
    is_archived = serializers.BooleanField(required=False)


class TemplatePreviewIn(RefusesUnknownFields):
    customer_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    event = serializers.DictField(
        required=False, help_text="sample properties of the triggering event"
    )
    version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="default: the current one"
    )
    locale = StrictCharField(
        max_length=35, required=False, allow_blank=True, help_text="default: the customer's"
    )


class TemplatePreviewOut(serializers.Serializer):
    channel = serializers.CharField()
    version = serializers.IntegerField()
    locale = serializers.CharField(help_text="the locale variant used; empty for the default")
    fields = serializers.DictField(help_text="the rendered fields of the channel")


class TemplateTestSendIn(RefusesUnknownFields):
    customer_id = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="whose data the message is rendered with"
    )
    to = StrictCharField(
        max_length=320,
        required=False,
        help_text="email: an address; WhatsApp and SMS: an E.164 phone. Default: the "
        "customer's own (push: their devices; in-app: their app)",
    )
    event = serializers.DictField(
        required=False, help_text="sample properties of the triggering event"
    )
    version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="default: the current one"
    )


class TemplateTestSendOut(serializers.Serializer):
    message_id = serializers.IntegerField()
    status = serializers.CharField(help_text="queued, or suppressed (a hard bounce)")
    decision = serializers.CharField()


class RenderErrorOut(serializers.Serializer):
    detail = serializers.CharField(help_text="why it cannot render, naming the field and line")
    code = serializers.CharField()
    field = serializers.CharField()


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class TemplateView(WorkspaceAPIView):
    serializer_class = TemplateOut
    path_model = Template

    def get_queryset(self):
        return services.templates_list(include_archived=True)


class TemplateListView(TemplateView):
    @extend_schema(
        parameters=[
            OpenApiParameter("channel", str, enum=Channel.values),
            OpenApiParameter("archived", bool, description="include archived templates"),
        ],
        responses=TemplateOut(many=True),
        summary="Templates",
    )
    def get(self, request):
        channel = request.query_params.get("channel") or None
        if channel is not None and channel not in Channel.values:
            raise exceptions.ValidationError({"channel": [f"one of {', '.join(Channel.values)}"]})
        archived = request.query_params.get("archived", "false")
        if archived not in ("true", "false"):
            raise exceptions.ValidationError({"archived": ["true or false"]})
        templates = services.templates_list(channel=channel, include_archived=archived == "true")
        page = self.paginate_queryset(templates)
        return self.get_paginated_response(TemplateOut(page, many=True).data)

    @extend_schema(
        request=TemplateCreateIn,
        responses={201: TemplateDetailOut},
        summary="Create a template (its version 1)",
    )
    def post(self, request):
        data = _validated(TemplateCreateIn, request.data)
        template = services.template_create(workspace=self.workspace, actor=self.actor, **data)
        return Response(TemplateDetailOut(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailView(TemplateView):
    @extend_schema(responses=TemplateDetailOut, summary="One template, with its current version")
    def get(self, request, id):
        return Response(TemplateDetailOut(self.get_object()).data)

    @extend_schema(
        request=TemplateUpdateIn,
        responses=TemplateDetailOut,
        summary="Edit a template: new content or locales write a new version",
    )
    def patch(self, request, id):
        template = self.get_object()
        data = _validated(TemplateUpdateIn, request.data)
        updated = services.template_update(template=template, actor=self.actor, **data)
        return Response(TemplateDetailOut(updated).data)

    @extend_schema(
        request=None,
        responses={204: None},
        summary="Delete a template, or archive it when messages used it",
        description="A template no message used is deleted. One that messages used is "
        "archived instead (its versions stay, as the messages point at them): it is left out "
        "of lists unless `archived=true`, and PATCH `is_archived: false` restores it.",
    )
    def delete(self, request, id):
        services.template_remove(template=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TemplateVersionListView(TemplateView):
    serializer_class = VersionOut

    @extend_schema(responses=VersionOut(many=True), summary="A template's versions, newest first")
    def get(self, request, id):
        versions = services.template_versions(self.get_object())
        page = self.paginate_queryset(versions.order_by("-id"))
        return self.get_paginated_response(VersionOut(page, many=True).data)


class TemplateVersionDetailView(TemplateView):
    serializer_class = VersionOut

    @extend_schema(
        parameters=[OpenApiParameter("number", int, OpenApiParameter.PATH)],
        responses=VersionOut,
        summary="One version of a template",
    )
    def get(self, request, id, number: str):
        template = self.get_object()
        is_number = number.isascii() and number.isdigit() and 0 < int(number) < 2**31
        version = services.template_version(template, int(number)) if is_number else None
        if version is None:
            raise exceptions.NotFound()
        return Response(VersionOut(version).data)


class TemplatePreviewView(TemplateView):
    serializer_class = TemplatePreviewOut

    @extend_schema(
        request=TemplatePreviewIn,
        responses={
            200: TemplatePreviewOut,
            422: OpenApiResponse(RenderErrorOut, description="the template cannot render"),
        },
        summary="Render a version for a customer (and a sample event), as a send would",
    )
    def post(self, request, id):
        template = self.get_object()
        data = _validated(TemplatePreviewIn, request.data)
        customer = Customer.objects.filter(id=data["customer_id"]).first()
        if customer is None:
            raise InvalidInput("no such customer in this workspace", field="customer_id")
        try:
            rendered = services.template_preview(
                template=template,
                customer=customer,
                version_number=data.get("version"),
                event=data.get("event"),
                locale=data.get("locale"),
            )
        except TemplateRenderError as error:
            body = {"detail": error.reason, "code": "render_failed", "field": error.field}
            return Response(body, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        body = {
            "channel": rendered.channel,
            "version": data.get("version") or template.current_number,
            "locale": rendered.locale,
            "fields": rendered.fields,
        }
        return Response(TemplatePreviewOut(body).data)


class TemplateTestSendView(TemplateView):
    serializer_class = TemplateTestSendOut

    @extend_schema(
        request=TemplateTestSendIn,
        responses={201: TemplateTestSendOut},
        summary="Send a test of the template now, rendered for a customer",
        description="A transactional message through the send pipeline (its origin is "
        "`test`), to `to` or the customer's own address, devices or app; it appears in the "
        "message log. Consent, caps and quiet hours do not apply; a hard-bounced or invalid "
        "address on the suppression list does.",
    )
    def post(self, request, id):
        template = self.get_object()
        data = _validated(TemplateTestSendIn, request.data)
        customer = Customer.objects.filter(id=data["customer_id"]).first()
        if customer is None:
            raise InvalidInput("no such customer in this workspace", field="customer_id")
        enqueued = services.template_test_send(
            template=template,
            customer=customer,
            actor=self.actor,
            to=data.get("to"),
            version_number=data.get("version"),
            event=data.get("event"),
        )
        message = enqueued.message
        body = {"message_id": message.id, "status": message.status, "decision": message.decision}
        return Response(TemplateTestSendOut(body).data, status=status.HTTP_201_CREATED)
