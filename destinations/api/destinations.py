"""Destinations in the API: `/api/v1/destinations` (list, connect), `…/kinds` (the catalogue),
`…/<id>` (get, PATCH, DELETE), and `…/<id>/test`, `…/enable`, `…/disable`, `…/forwarding`.

Connecting and changing destinations is a workspace setting (admins and owners); reading is
for every role. Views translate; destinations.services decides. Credentials go in and never
come out: responses carry only `credential_hints`.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from destinations import selectors, services
from destinations.api import serializers as s
from destinations.connectors import connector_class
from destinations.models import Destination
from masivo.tenancy.api.pagination import CreatedCursorPagination
from masivo.tenancy.api.views import WorkspaceAPIView
from masivo.tenancy.roles import Permission


class DestinationView(WorkspaceAPIView):
    serializer_class = s.DestinationOut
    path_model = Destination
    write_permission = Permission.MANAGE_DESTINATIONS

    def get_queryset(self):
        return selectors.destinations_list()

    def detail(self, destination: Destination, status_code=200) -> Response:
        fresh = self.get_queryset().get(id=destination.id)
        return Response(s.DestinationOut(fresh).data, status=status_code)


class DestinationListView(DestinationView):
    pagination_class = CreatedCursorPagination

    @extend_schema(responses=s.DestinationOut(many=True), summary="Destinations")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.DestinationOut(page, many=True).data)

    @extend_schema(
        request=s.DestinationCreateIn,
        responses={201: s.DestinationOut},
        summary="Connect a destination",
        description="`config` and `credentials` hold the kind's fields (GET /destinations/kinds); "
        "an error names `config.<field>` or `credentials.<field>`. Test it next.",
    )
    def post(self, request):
        data = s.validated(s.DestinationCreateIn, request.data)
        destination = services.destination_create(
            workspace=self.workspace, kind=data["kind"], name=data["name"], key=data.get("key"),
            config=data.get("config"), credentials=data.get("credentials"), actor=self.actor,
        )  # fmt: skip
        return self.detail(destination, status.HTTP_201_CREATED)


class DestinationKindsView(WorkspaceAPIView):
    serializer_class = s.DestinationKindOut
    pagination_class = None

    @extend_schema(
        responses=s.DestinationKindOut(many=True),
        summary="The kinds one may connect, with their fields and identifiers",
    )
    def get(self, request):
        return Response(s.DestinationKindOut(selectors.kinds_catalogue(), many=True).data)


class DestinationDetailView(DestinationView):
    @extend_schema(responses=s.DestinationOut, summary="One destination")
    def get(self, request, id):
        return Response(s.DestinationOut(self.get_object()).data)

    @extend_schema(
        request=s.DestinationUpdateIn,
        responses=s.DestinationOut,
        summary="Rename, or change config, credentials or the rate limit (the fields given)",
        description="Changed config or credentials clear the last test result.",
    )
    def patch(self, request, id):
        destination = self.get_object()
        data = s.validated(s.DestinationUpdateIn, request.data)
        rate = data.get("rate_limit_per_second", False)  # False: unchanged, None: the default
        destination = services.destination_update(
            destination=destination, actor=self.actor, name=data.get("name"),
            config=data.get("config"), credentials=data.get("credentials"),
            rate_limit_per_second=rate,
        )  # fmt: skip
        return self.detail(destination)

    @extend_schema(
        request=None,
        responses={204: None},
        summary="Disconnect (its syncs, runs and records go too; the platform keeps its data)",
    )
    def delete(self, request, id):
        services.destination_delete(destination=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DestinationTestView(DestinationView):
    serializer_class = s.DestinationTestOut

    @extend_schema(
        request=None,
        responses=s.DestinationTestOut,
        summary="Call the platform with the stored credentials and record the result",
    )
    def post(self, request, id):
        destination = self.get_object()
        outcome = services.destination_test(destination=destination, actor=self.actor)
        body = {"ok": outcome.is_ok, "detail": outcome.detail,
                "tested_at": destination.last_tested_at}  # fmt: skip
        return Response(s.DestinationTestOut(body).data)


class DestinationEnableView(DestinationView):
    @extend_schema(request=None, responses=s.DestinationOut, summary="Enable again")
    def post(self, request, id):
        destination = services.destination_set_status(
            destination=self.get_object(), active=True, actor=self.actor
        )
        return self.detail(destination)


class DestinationDisableView(DestinationView):
    @extend_schema(
        request=s.DestinationDisableIn,
        responses=s.DestinationOut,
        summary="Disable: nothing is sent; its syncs and forwarding wait",
    )
    def post(self, request, id):
        destination = self.get_object()
        data = s.validated(s.DestinationDisableIn, request.data)
        destination = services.destination_set_status(
            destination=destination, active=False, actor=self.actor, reason=data.get("reason", "")
        )
        return self.detail(destination)


def forwarding_data(destination: Destination) -> dict:
    """The settings (with their defaults) and the read-only lag figures."""
    connector = connector_class(destination.kind)
    settings = destination.forwarding or {}
    lag = selectors.forwarding_lag(destination)
    return {
        "enabled": bool(settings.get("enabled")),
        "types": settings.get("types", []),
        "event_names": settings.get("event_names", []),
        "traits": settings.get("traits", []),
        "since": settings.get("since"),
        "offered_types": [
            name for name, capability in services.FORWARD_TYPES.items() if connector.has(capability)
        ],
        "oldest_pending_at": lag.oldest_pending_at,
        "oldest_pending_age_seconds": lag.age_seconds(timezone.now()),
        "pending_batches": lag.pending_batches,
        "dead_batches": lag.dead_batches,
    }


class DestinationForwardingView(DestinationView):
    serializer_class = s.DestinationForwardingOut

    @extend_schema(
        responses=s.DestinationForwardingOut,
        summary="Near-real-time forwarding settings, and how far behind it is",
    )
    def get(self, request, id):
        return Response(s.DestinationForwardingOut(forwarding_data(self.get_object())).data)

    @extend_schema(
        request=s.DestinationForwardingIn,
        responses=s.DestinationForwardingOut,
        summary="Set forwarding (turning it on starts from now)",
    )
    def put(self, request, id):
        destination = self.get_object()
        data = s.validated(s.DestinationForwardingIn, request.data)
        destination = services.forwarding_update(
            destination=destination, actor=self.actor, enabled=data["enabled"],
            types=data.get("types"), event_names=data.get("event_names"),
            traits=data.get("traits"),
        )  # fmt: skip
        return Response(s.DestinationForwardingOut(forwarding_data(destination)).data)
