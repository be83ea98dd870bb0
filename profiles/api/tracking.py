"""The Segment-compatible tracking API: /v1/identify, track, page, screen, group, alias, batch."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from masivo.tenancy.api.authentication import WriteKeyAuthentication
from profiles import normalize
from profiles.api.parsers import SegmentJSONParser
from profiles.ingestion import tracking_store
from profiles.tracking import parse_segment_batch

MAX_BATCH_MESSAGES = 2500


class IsWriteKey(permissions.BasePermission):
    message = "a write key is required (HTTP Basic username, or writeKey in the body)"

    def has_permission(self, request, view):
        return bool(getattr(request, "is_write_key", False))


def _client_context(request) -> dict:
    context = {}
    ip = request.META.get("REMOTE_ADDR")
    if ip:
        context["ip"] = ip
    agent = request.META.get("HTTP_USER_AGENT")
    if agent:
        context["userAgent"] = normalize.strip_nul(agent)[:500]
    return context


class TrackingView(APIView):
    authentication_classes = [WriteKeyAuthentication]
    permission_classes = [IsWriteKey]
    throttle_classes = []
    parser_classes = [SegmentJSONParser]
    kind: str | None = None

    @extend_schema(
        request={"application/json": {"type": "object"}},
        responses={
            200: OpenApiResponse(description='{"success": true, ...}'),
            400: OpenApiResponse(description="nothing stored; reasons given"),
        },
        summary="Segment-compatible tracking call",
        tags=["tracking"],
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise exceptions.ParseError("the body must be a JSON object")
        received_at = timezone.now()
        if self.kind is None:
            items = body.get("batch")
            if not isinstance(items, list):
                raise exceptions.ValidationError({"batch": ["must be an array of messages"]})
            if len(items) > MAX_BATCH_MESSAGES:
                raise exceptions.ValidationError(
                    {"batch": [f"at most {MAX_BATCH_MESSAGES} messages"]}
                )
            batch_context = normalize.clean_object(body.get("context"), field="context")
        else:
            items, batch_context = [body], {}
        batch_context = {**_client_context(request), **batch_context}
        if self.kind is None and isinstance(body.get("sentAt"), str):
            # Segment's libraries stamp sentAt on the batch: it applies to items without one.
            items = [
                {**item, "sentAt": body["sentAt"]}
                if isinstance(item, dict) and "sentAt" not in item
                else item
                for item in items
            ]
        messages, rejected = parse_segment_batch(
            items, kind=self.kind, batch_context=batch_context, received_at=received_at
        )
        result = tracking_store(
            workspace=request.workspace, messages=messages, source="segment", now=received_at
        )
        rejected = sorted([*rejected, *result.rejected], key=lambda r: r.index)
        payload = {"success": True}
        if rejected or result.warnings:
            payload |= {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": [r.as_dict() for r in rejected],
                "warnings": result.warnings,
            }
        if items and len(rejected) == len(items):
            first = rejected[0]
            body = {"detail": first.reason, "code": "invalid", "success": False}
            body["errors"] = {first.field or "message": [first.reason]}
            body["rejected"] = payload["rejected"]
            return Response(body, status=400)
        return Response(payload)


def tracking_view(kind: str | None):
    return type(
        f"Tracking{(kind or 'batch').title()}View", (TrackingView,), {"kind": kind}
    ).as_view()
