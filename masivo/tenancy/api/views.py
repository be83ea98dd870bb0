from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from masivo.tenancy import invitations, selectors, services
from masivo.tenancy.api import serializers as s
from masivo.tenancy.errors import RateLimited
from masivo.tenancy.roles import Permission


class WorkspaceAPIView(generics.GenericAPIView):
    """Base for the API: authentication has put the key's workspace in context."""

    write_permission = Permission.EDIT_MARKETING
    lookup_field = "id"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        _refuse_nul_in_query(request.query_params)

    @property
    def workspace(self):
        return self.request.workspace

    @property
    def actor(self):
        return self.request.actor


class CurrentWorkspaceView(WorkspaceAPIView):
    write_permission = Permission.MANAGE_WORKSPACE
    serializer_class = s.WorkspaceOut

    @extend_schema(responses=s.WorkspaceOut, summary="The workspace this key belongs to")
    def get(self, request):
        return Response(s.WorkspaceOut(self.workspace).data)

    @extend_schema(
        request=s.WorkspaceUpdateIn, responses=s.WorkspaceOut, summary="Rename or set the time zone"
    )
    def patch(self, request):
        data = _validated(s.WorkspaceUpdateIn, request.data)
        workspace = services.workspace_update(
            workspace=self.workspace,
            actor=self.actor,
            name=data.get("name"),
            timezone_name=data.get("timezone"),
        )
        return Response(s.WorkspaceOut(workspace).data)


class ApiKeyListView(WorkspaceAPIView):
    write_permission = Permission.MANAGE_KEYS
    serializer_class = s.ApiKeyOut

    def get_queryset(self):
        return selectors.api_keys_list()

    @extend_schema(responses=s.ApiKeyOut(many=True), summary="List keys (prefixes only)")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.ApiKeyOut(page, many=True).data)

    @extend_schema(
        request=s.API_KEY_CREATE_SCHEMA,
        responses={201: s.ApiKeyCreatedOut},
        summary="Create a key; the token is shown once",
    )
    def post(self, request):
        data = _validated(s.ApiKeyCreateIn, request.data)
        minted = services.api_key_create(
            workspace=self.workspace,
            kind=data["kind"],
            name=data["name"],
            role=data.get("role", ""),
            actor=self.actor,
        )
        body = s.ApiKeyOut(minted.api_key).data | {"token": minted.token}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(WorkspaceAPIView):
    write_permission = Permission.MANAGE_KEYS
    serializer_class = s.ApiKeyOut

    def get_queryset(self):
        return selectors.api_keys_list()

    @extend_schema(responses=s.ApiKeyOut, summary="One key (prefix only)")
    def get(self, request, id):
        return Response(s.ApiKeyOut(self.get_object()).data)


class ApiKeyRevokeView(WorkspaceAPIView):
    """POST only: a GET here must not answer with the key as if it were its detail."""

    write_permission = Permission.MANAGE_KEYS
    serializer_class = s.ApiKeyOut

    def get_queryset(self):
        return selectors.api_keys_list()

    @extend_schema(
        request=None,
        responses={
            200: s.ApiKeyOut,
            503: OpenApiResponse(
                s.ServiceErrorOut,
                description="Redis, which tells every process, is unavailable; nothing changed",
            ),
        },
        summary="Revoke a key; effective immediately in every process",
    )
    def post(self, request, id):
        api_key = services.api_key_revoke(api_key=self.get_object(), actor=self.actor)
        return Response(s.ApiKeyOut(api_key).data)


class MemberListView(WorkspaceAPIView):
    write_permission = Permission.MANAGE_MEMBERS
    serializer_class = s.MemberOut

    def get_queryset(self):
        return selectors.members_list(workspace=self.workspace)

    @extend_schema(
        responses=s.MemberOut(many=True), summary="Members of the workspace's organization"
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.MemberOut(page, many=True).data)


class MemberDetailView(WorkspaceAPIView):
    write_permission = Permission.MANAGE_MEMBERS
    serializer_class = s.MemberOut

    def get_queryset(self):
        return selectors.members_list(workspace=self.workspace)

    @extend_schema(responses=s.MemberOut, summary="One member")
    def get(self, request, id):
        return Response(s.MemberOut(self.get_object()).data)

    @extend_schema(
        request=s.MemberUpdateIn, responses=s.MemberOut, summary="Change a member's role"
    )
    def patch(self, request, id):
        member = self.get_object()
        data = _validated(s.MemberUpdateIn, request.data)
        member = services.member_change_role(member=member, role=data["role"], actor=self.actor)
        return Response(s.MemberOut(member).data)

    @extend_schema(request=None, responses={204: None}, summary="Remove a member")
    def delete(self, request, id):
        services.member_remove(member=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(WorkspaceAPIView):
    write_permission = Permission.MANAGE_MEMBERS
    serializer_class = s.InvitationOut

    def get_queryset(self):
        return selectors.invitations_open(workspace=self.workspace)

    @extend_schema(
        responses=s.InvitationOut(many=True),
        summary="Open invitations (pending or expired, not accepted or revoked)",
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.InvitationOut(page, many=True).data)

    @extend_schema(
        request=s.InvitationCreateIn,
        responses={
            201: s.InvitationOut,
            503: OpenApiResponse(
                s.ServiceErrorOut, description="the email could not be sent; nothing was stored"
            ),
        },
        summary="Invite by email (re-inviting an open invitation's email refreshes it)",
    )
    def post(self, request):
        data = _validated(s.InvitationCreateIn, request.data)
        invitation = invitations.invitation_send(
            organization=self.workspace.organization,
            email=data["email"],
            role=data["role"],
            actor=self.actor,
            site_url=request.build_absolute_uri("/"),
        )
        return Response(s.InvitationOut(invitation).data, status=status.HTTP_201_CREATED)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response


class InvitationDetailView(WorkspaceAPIView):
    write_permission = Permission.MANAGE_MEMBERS
    serializer_class = s.InvitationOut

    def get_queryset(self):
        return selectors.invitations_list(workspace=self.workspace)

    @extend_schema(responses=s.InvitationOut, summary="One invitation, in any state")
    def get(self, request, id):
        return Response(s.InvitationOut(self.get_object()).data)


class InvitationRevokeView(WorkspaceAPIView):
    write_permission = Permission.MANAGE_MEMBERS
    serializer_class = s.InvitationOut

    def get_queryset(self):
        return selectors.invitations_list(workspace=self.workspace)

    @extend_schema(
        request=None,
        responses=s.InvitationOut,
        summary="Revoke an invitation; its link stops working",
    )
    def post(self, request, id):
        invitation = invitations.invitation_revoke(invitation=self.get_object(), actor=self.actor)
        return Response(s.InvitationOut(invitation).data)


def _refuse_nul_in_query(query_params) -> None:
    """Every query parameter, filter or not, in one place: PostgreSQL cannot compare a string
    holding NUL (psycopg raises DataError), and no name, id or token contains one."""
    for name, values in query_params.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            raise exceptions.ValidationError({name: ["must not contain NUL characters"]})


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ApiRootView(APIView):
    """So that /api/v1/ answers something useful rather than a 404."""

    @extend_schema(exclude=True)
    def get(self, request):
        return Response({"workspace": request.workspace.id, "schema": "/api/v1/schema/"})
