from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from masivo.tenancy.api.views import WorkspaceAPIView
from masivo.tenancy.roles import Permission
from messaging import selectors, services
from messaging.api import serializers as s
from messaging.models import ChannelConnection


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ConnectionView(WorkspaceAPIView):
    """Connections are workspace settings: reading needs viewer, changing needs admin."""

    write_permission = Permission.MANAGE_WORKSPACE
    serializer_class = s.ConnectionOut
    path_model = ChannelConnection

    def get_queryset(self):
        return selectors.connections_list()


class ConnectionListView(ConnectionView):
    @extend_schema(responses=s.ConnectionOut(many=True), summary="Channel connections")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.ConnectionOut(page, many=True).data)

    @extend_schema(
        request=s.CONNECTION_CREATE_SCHEMA,
        responses={201: s.ConnectionOut},
        summary="Connect a provider (SendGrid, Twilio or FCM)",
    )
    def post(self, request):
        provider = request.data.get("provider") if isinstance(request.data, dict) else None
        serializer_class = s.CREATE_SERIALIZERS.get(provider) if isinstance(provider, str) else None
        if serializer_class is None:
            raise exceptions.ValidationError(
                {"provider": [f"one of {', '.join(s.CREATE_SERIALIZERS)}"]}
            )
        values = _validated(serializer_class, request.data)
        values.pop("provider")
        connection = services.connection_create(
            workspace=self.workspace, provider=provider, values=values, actor=self.actor
        )
        return Response(s.ConnectionOut(connection).data, status=status.HTTP_201_CREATED)


class ConnectionDetailView(ConnectionView):
    @extend_schema(responses=s.ConnectionOut, summary="One connection")
    def get(self, request, id):
        return Response(s.ConnectionOut(self.get_object()).data)

    @extend_schema(
        request=s.ConnectionUpdateIn,
        responses=s.ConnectionOut,
        summary="Change a connection's settings or credentials (the fields given)",
    )
    def patch(self, request, id):
        connection = self.get_object()
        values = _validated(s.UPDATE_SERIALIZERS[connection.provider], request.data)
        updated = services.connection_update(connection=connection, values=values, actor=self.actor)
        return Response(s.ConnectionOut(updated).data)

    @extend_schema(request=None, responses={204: None}, summary="Disconnect (credentials deleted)")
    def delete(self, request, id):
        services.connection_delete(connection=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConnectionTestView(ConnectionView):
    serializer_class = s.ConnectionTestOut

    @extend_schema(
        request=None,
        responses=s.ConnectionTestOut,
        summary="Test the connection: call the provider with the stored credentials",
        description="Always 200 when the connection exists: `is_ok` says whether the provider "
        "accepted the credentials and `detail` what it said. The result is kept on the "
        "connection (`last_tested_at`, `last_test_ok`, `last_test_detail`).",
    )
    def post(self, request, id):
        connection = self.get_object()
        outcome = services.connection_test(connection=connection, actor=self.actor)
        body = {
            "is_ok": outcome.is_ok,
            "detail": outcome.detail,
            "tested_at": connection.last_tested_at,
        }
        return Response(s.ConnectionTestOut(body).data)
