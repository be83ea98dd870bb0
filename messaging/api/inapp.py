"""The in-app messages API for mobile apps: list the customer's active messages, report them
seen, clicked or dismissed.

Authenticated like device registration: the app holds the workspace's write key and a customer
token (`X-Customer-Token`, from `POST /customers/{id}/token` called by the app's backend),
which names the customer. A secret key works too, with the same customer token. A message of
another customer, or not an in-app message that reached its customer, is a 404 like a missing
one.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from masivo.tenancy.api.permissions import HasWorkspaceRole
from masivo.tenancy.api.views import WorkspaceAPIView
from messaging import inapp
from messaging.models import Message
from profiles.services.devices import customer_token_verify

NO_CUSTOMER = (
    "in-app messages need a valid customer token (X-Customer-Token); "
    "get one from POST /customers/{id}/token"
)
CUSTOMER_TOKEN = OpenApiParameter(
    "X-Customer-Token",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=True,
    description="the customer's token, from POST /customers/{id}/token (valid for an hour)",
)


@extend_schema_field({"type": "string", "enum": list(inapp.LAYOUTS)})
class LayoutField(serializers.CharField):
    """An inline enum: `layout` is a common field name, and a component would be shared."""


class InAppButtonOut(serializers.Serializer):
    label = serializers.CharField()
    deep_link = serializers.CharField(allow_blank=True)


class InAppMessageOut(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField(allow_blank=True)
    body = serializers.CharField(allow_blank=True)
    image = serializers.CharField(allow_blank=True, help_text="an image URL, or empty")
    buttons = InAppButtonOut(many=True)
    layout = LayoutField()
    expires_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField(help_text="sent, delivered, opened, read or clicked")


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def inapp_message_out(message: Message) -> dict:
    """The rendered payload as the app takes it, whatever shape the payload was stored in."""
    payload = message.payload if isinstance(message.payload, dict) else {}
    buttons = payload.get("buttons")
    layout = payload.get("layout")
    return {
        "id": message.id,
        "title": _text(payload.get("title")),
        "body": _text(payload.get("body")),
        "image": _text(payload.get("image")),
        "buttons": [
            {"label": _text(button.get("label")), "deep_link": _text(button.get("deep_link"))}
            for button in (buttons if isinstance(buttons, list) else [])
            if isinstance(button, dict)
        ],
        "layout": layout if layout in inapp.LAYOUTS else inapp.LAYOUTS[0],
        "expires_at": inapp.inapp_expires_at(message),
        "sent_at": message.sent_at,
        "status": message.status,
    }


class InAppPermission(HasWorkspaceRole):
    """A write key may call these (the customer token is checked in the view); a secret key
    needs its role as anywhere else."""

    def has_permission(self, request, view):
        if getattr(request, "is_write_key", False):
            return True
        return super().has_permission(request, view)


class InAppView(WorkspaceAPIView):
    accepts_write_key = True
    permission_classes = [InAppPermission]
    pagination_class = None
    path_model = Message
    serializer_class = InAppMessageOut

    def get_queryset(self):
        return inapp.inapp_messages_delivered()

    def token_customer_id(self) -> int:
        token = self.request.headers.get("X-Customer-Token")
        customer_id = (
            customer_token_verify(token=token, workspace_id=self.workspace.id)
            if isinstance(token, str)
            else None
        )
        if customer_id is None:
            raise exceptions.PermissionDenied(NO_CUSTOMER)
        return customer_id


class InAppMessageListView(InAppView):
    @extend_schema(
        parameters=[CUSTOMER_TOKEN],
        responses=InAppMessageOut(many=True),
        summary="The customer's active in-app messages, newest first",
        description="Messages that reached the customer, not dismissed and not expired "
        f"(at most {inapp.MAX_ACTIVE}).",
    )
    def get(self, request):
        customer_id = self.token_customer_id()
        messages = inapp.inapp_messages_active(customer_id=customer_id)
        return Response([inapp_message_out(message) for message in messages])


class InAppReportView(InAppView):
    report = ""

    def post(self, request, id):
        message = self.get_object()
        if message.customer_id != self.token_customer_id():
            raise exceptions.NotFound()
        inapp.inapp_message_report(message=message, report=self.report)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _report_schema(report: str, summary: str):
    return extend_schema(
        parameters=[CUSTOMER_TOKEN],
        request=None,
        responses={204: None},
        summary=summary,
        description=f"Idempotent: reporting `{report}` again changes nothing.",
    )


class InAppSeenView(InAppReportView):
    report = "seen"

    @_report_schema("seen", "Report an in-app message seen (opened)")
    def post(self, request, id):
        return super().post(request, id)


class InAppClickedView(InAppReportView):
    report = "clicked"

    @_report_schema("clicked", "Report an in-app message clicked")
    def post(self, request, id):
        return super().post(request, id)


class InAppDismissedView(InAppReportView):
    report = "dismissed"

    @_report_schema("dismissed", "Report an in-app message dismissed: it is no longer listed")
    def post(self, request, id):
        return super().post(request, id)
