"""Event exports in the API: `/api/v1/destinations/<id>/event-exports` lists an S3
destination's exports by day (newest first) and asks for one (a day before today, UTC).

Asking for a day already exported returns that export as it is; `again: true` writes a finished
one again. Exporting is a workspace setting (admins and owners); every role reads. Views
translate; destinations.exports decides.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from destinations import exports
from destinations.api.serializers import validated
from destinations.connectors.s3 import StrictBooleanField
from destinations.models import Destination, DestinationKind, EventExport
from masivo.tenancy.api.pagination import CreatedCursorPagination
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField
from masivo.tenancy.api.views import WorkspaceAPIView
from masivo.tenancy.roles import Permission


class EventExportIn(RefusesUnknownFields):
    day = serializers.DateField(help_text="YYYY-MM-DD, a UTC day before today")
    event_names = serializers.ListField(
        child=StrictCharField(max_length=200), required=False,
        max_length=exports.MAX_EVENT_NAMES,
        help_text="only these event names (empty: every event; absent: the destination's "
        "config.export_event_names)",
    )  # fmt: skip
    again = StrictBooleanField(
        required=False, default=False, help_text="write a finished export of the day again"
    )


class EventExportOut(serializers.ModelSerializer):
    class Meta:
        model = EventExport
        fields = [
            "id", "destination", "day", "event_names", "status", "rows", "objects_written",
            "checkpoint", "manifest_key", "attempts", "error", "created_by", "created_at",
            "started_at", "finished_at", "retry_at",
        ]  # fmt: skip


class EventExportsView(WorkspaceAPIView):
    serializer_class = EventExportOut
    path_model = Destination
    write_permission = Permission.MANAGE_DESTINATIONS
    pagination_class = CreatedCursorPagination

    def get_queryset(self):
        return Destination.objects.filter(kind=DestinationKind.S3)

    @extend_schema(responses=EventExportOut(many=True), summary="An S3 destination's exports")
    def get(self, request, id):
        page = self.paginate_queryset(exports.event_exports_list(destination=self.get_object()))
        return self.get_paginated_response(EventExportOut(page, many=True).data)

    @extend_schema(
        request=EventExportIn,
        responses={202: EventExportOut},
        summary="Export one day's events to the destination (queued)",
    )
    def post(self, request, id):
        destination = self.get_object()  # another workspace's id is a 404 before any 400
        data = validated(EventExportIn, request.data)
        export = exports.event_export_schedule(
            destination=destination, day=data["day"], event_names=data.get("event_names"),
            again=data["again"], actor=self.actor,
        )  # fmt: skip
        return Response(EventExportOut(export).data, status=status.HTTP_202_ACCEPTED)
