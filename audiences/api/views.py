from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from audiences import selectors, services
from audiences.api import serializers as s
from audiences.lists import list_upload_create, list_upload_problems_csv
from audiences.models import Audience, ListUpload, Membership
from masivo.feeds.selectors import BEGINNING, FeedPosition
from masivo.tenancy.api.errors import CodedValidationError
from masivo.tenancy.api.pagination import CursorPagination
from masivo.tenancy.api.views import WorkspaceAPIView
from profiles.models import Customer

CHANGES_PAGE = 1000


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _rules_error_response(error: services.RulesError) -> Response:
    return Response(
        {
            "detail": error.message,
            "code": "invalid_rules",
            "errors": {"rules": [f"{path}: {message}" for path, message in error.errors]},
        },
        status=400,
    )


class AudienceScopedView(WorkspaceAPIView):
    """Views under /audiences/{id}: the id is an audience of this workspace, else 404."""

    path_model = Audience

    def get_queryset(self):
        return Audience.objects.all()


class AudienceListView(WorkspaceAPIView):
    serializer_class = s.AudienceOut

    def get_queryset(self):
        return selectors.audiences_list()

    @extend_schema(responses=s.AudienceOut(many=True), summary="Audiences")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.AudienceOut(page, many=True).data)

    @extend_schema(request=s.AudienceIn, responses={201: s.AudienceOut}, summary="Create")
    def post(self, request):
        data = _validated(s.AudienceIn, request.data)
        try:
            audience = services.audience_create(workspace=self.workspace, data=data)
        except services.RulesError as error:
            return _rules_error_response(error)
        return Response(s.AudienceOut(audience).data, status=status.HTTP_201_CREATED)


class AudienceDetailView(AudienceScopedView):
    serializer_class = s.AudienceOut

    @extend_schema(responses=s.AudienceOut, summary="One audience")
    def get(self, request, id):
        return Response(s.AudienceOut(self.get_object()).data)

    @extend_schema(request=s.AudienceUpdateIn, responses=s.AudienceOut, summary="Update")
    def patch(self, request, id):
        audience = self.get_object()
        data = _validated(s.AudienceUpdateIn, request.data)
        try:
            updated = services.audience_update(audience=audience, data=data)
        except services.RulesError as error:
            return _rules_error_response(error)
        return Response(s.AudienceOut(updated).data)

    @extend_schema(request=None, responses={204: None}, summary="Delete (refused while referenced)")
    def delete(self, request, id):
        services.audience_delete(audience=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembershipPagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    max_page_size = 1000


class AudienceMembersView(AudienceScopedView):
    serializer_class = s.AudienceMemberOut
    pagination_class = MembershipPagination

    @extend_schema(responses=s.AudienceMemberOut(many=True), summary="Members, newest first")
    def get(self, request, id):
        audience = self.get_object()
        members = (
            Membership.objects.filter(audience=audience)
            .select_related("customer")
            .only(
                "id", "customer_id", "since", "source", "customer__external_id", "customer__email"
            )
        )
        page = self.paginate_queryset(members)
        return self.get_paginated_response(s.AudienceMemberOut(page, many=True).data)

    @extend_schema(
        request=s.MembersChangeIn,
        responses={200: {"type": "object"}},
        summary="Add or remove members of an uploaded list",
    )
    def post(self, request, id):
        audience = self.get_object()
        data = _validated(s.MembersChangeIn, request.data)
        added, removed = services.list_members_change(
            audience=audience,
            add=data.get("add", []),
            remove=data.get("remove", []),
            actor=self.actor.label,
        )
        return Response({"added": added, "removed": removed})


class AudienceChangesView(AudienceScopedView):
    """A stateless reader of the membership-change feed: the client keeps `next_after`."""

    serializer_class = s.ChangeOut

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after", str, description="the `next_after` of your last page (opaque); omit it "
                "to start from the oldest change kept",
            ),
            OpenApiParameter(
                "since", int, deprecated=True, description="instead of `after`: the id of the "
                "last change you have (0 first); `next_since` gives it",
            ),
            OpenApiParameter("limit", int, description=f"at most {CHANGES_PAGE}"),
        ],
        responses={
            200: inline_serializer(
                "AudienceChangePage",
                {
                    "results": s.ChangeOut(many=True),
                    "next_after": serializers.CharField(),
                    "next_since": serializers.IntegerField(),
                },
            )
        },
        summary="The enter/exit feed, oldest first after `after`",
        description="Changes come in commit order; a change whose transaction is still open "
        "holds back the ones after it, so a page never skips one that commits late. An empty "
        "page means nothing more yet: ask again later with the same `next_after`.",
    )  # fmt: skip
    def get(self, request, id):
        audience = self.get_object()
        try:
            limit = min(int(request.query_params.get("limit", CHANGES_PAGE)), CHANGES_PAGE)
        except ValueError as error:
            raise exceptions.ValidationError({"limit": ["a whole number"]}) from error
        after = self._start(audience, request.query_params)
        changes, end = selectors.changes_since(audience=audience, after=after, limit=max(limit, 1))
        return Response(
            {
                "results": s.ChangeOut(changes, many=True).data,
                "next_after": end.encode(),
                "next_since": end.id,
            }
        )

    @staticmethod
    def _start(audience, params) -> FeedPosition:
        if "after" in params and "since" in params:
            raise exceptions.ValidationError({"after": ["give after or since, not both"]})
        if "after" in params:
            try:
                return FeedPosition.decode(params["after"])
            except ValueError as error:
                raise exceptions.ValidationError(
                    {"after": ["the next_after of an earlier page"]}
                ) from error
        try:
            since = int(params.get("since", 0))
        except ValueError as error:
            raise exceptions.ValidationError({"since": ["a whole number"]}) from error
        if since == 0:
            return BEGINNING
        position = selectors.change_feed_position(audience=audience, change_id=since)
        if position is None:
            raise CodedValidationError(
                {"since": [f"change {since} is not in this audience's feed (it may have "
                           "expired): start again without since"]},
                code="unknown_change",
            )  # fmt: skip
        return position


class AudienceRecalculateView(AudienceScopedView):
    serializer_class = s.RecalculationOut
    pagination_class = None  # GET answers the 50 most recent runs, unpaged

    @extend_schema(request=None, responses={202: s.RecalculationOut}, summary="Recalculate now")
    def post(self, request, id):
        run = services.audience_recalculate_request(audience=self.get_object(), reason="requested")
        return Response(s.RecalculationOut(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=s.RecalculationOut(many=True), summary="Recent recalculations")
    def get(self, request, id):
        audience = self.get_object()
        runs = selectors.recalculations_recent(audience=audience, limit=50)
        return Response(s.RecalculationOut(runs, many=True).data)


class AudienceExplainView(AudienceScopedView):
    serializer_class = s.ExplainOut

    @extend_schema(
        parameters=[OpenApiParameter("customer_id", int, required=True)],
        responses=s.ExplainOut,
        summary="Why a customer is (not) in this audience",
    )
    def get(self, request, id):
        audience = self.get_object()
        try:
            customer_id = int(request.query_params.get("customer_id", ""))
        except ValueError as error:
            raise exceptions.ValidationError({"customer_id": ["a customer id"]}) from error
        customer = get_object_or_404(Customer.objects.all(), id=customer_id)
        return Response(selectors.audience_explain(audience=audience, customer=customer))


class AudiencePreviewView(WorkspaceAPIView):
    serializer_class = s.PreviewOut

    @extend_schema(request=s.PreviewIn, responses=s.PreviewOut, summary="Count and sample")
    def post(self, request):
        data = _validated(s.PreviewIn, request.data)
        try:
            body = selectors.audience_preview(
                workspace=self.workspace, rules_document=data["rules"]
            )
        except services.RulesError as error:
            return _rules_error_response(error)
        return Response(body)


class CustomerAudiencesOut(serializers.Serializer):
    audience_id = serializers.IntegerField()
    name = serializers.CharField(source="audience__name")
    since = serializers.DateTimeField()
    source = serializers.CharField()


class CustomerAudiencesView(WorkspaceAPIView):
    serializer_class = CustomerAudiencesOut
    path_model = Customer
    pagination_class = None  # all of a customer's audiences, unpaged

    def get_queryset(self):
        return Customer.objects.all()

    @extend_schema(responses=CustomerAudiencesOut(many=True), summary="A customer's audiences")
    def get(self, request, id):
        customer = self.get_object()
        rows = selectors.customer_audiences(customer=customer)
        return Response(CustomerAudiencesOut(rows, many=True).data)


class AudienceUploadView(AudienceScopedView):
    serializer_class = s.ListUploadOut
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": s.ListUploadIn},
        responses={202: s.ListUploadOut},
        summary="Upload a CSV of external ids, emails or phones into an uploaded list",
    )
    def post(self, request, id):
        audience = self.get_object()
        upload = request.FILES.get("file")
        if upload is None:
            raise exceptions.ValidationError({"file": ["attach the CSV as `file`"]})
        data = _validated(
            s.ListUploadIn,
            {
                "file": upload,
                "identifier": request.data.get("identifier"),
                "create_missing": request.data.get("create_missing", False),
            },
        )
        list_upload = list_upload_create(
            audience=audience,
            upload=upload,
            filename=upload.name or "list.csv",
            identifier=data["identifier"],
            create_missing=data["create_missing"],
            actor=self.actor.label,
        )
        return Response(s.ListUploadOut(list_upload).data, status=status.HTTP_202_ACCEPTED)


class ListUploadDetailView(WorkspaceAPIView):
    serializer_class = s.ListUploadOut

    def get_queryset(self):
        return ListUpload.objects.all()

    @extend_schema(responses=s.ListUploadOut, summary="An upload's progress and counts")
    def get(self, request, id):
        return Response(s.ListUploadOut(self.get_object()).data)


class ListUploadProblemsView(ListUploadDetailView):
    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="row,value,reason")
        },
        summary="Rows that added no one (invalid or unmatched), as CSV",
    )
    def get(self, request, id):
        list_upload = self.get_object()
        response = StreamingHttpResponse(
            list_upload_problems_csv(list_upload=list_upload), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="list-upload-{list_upload.id}.csv"'
        return response
