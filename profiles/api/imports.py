"""Customer CSV imports: upload, progress, error report."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from masivo.tenancy.api.parsers import loads_bounded
from masivo.tenancy.api.views import WorkspaceAPIView
from profiles.imports import MAX_IMPORT_BYTES, customer_import_create, customer_import_errors_csv
from profiles.models import CustomerImport


class CustomerImportOut(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True, help_text="0 to 1, by bytes read")
    errors_url = serializers.SerializerMethodField()

    class Meta:
        model = CustomerImport
        fields = [
            "id", "filename", "status", "progress", "match_by", "mapping", "size_bytes",
            "next_row", "rows_created", "rows_updated", "rows_failed", "error", "created_by",
            "created_at", "started_at", "finished_at", "errors_url",
        ]  # fmt: skip

    def get_errors_url(self, obj) -> str:
        return f"/api/v1/customer-imports/{obj.id}/errors"


class CustomerImportIn(serializers.Serializer):
    file = serializers.FileField(help_text="UTF-8 CSV with a header row")
    mapping = serializers.CharField(
        required=False,
        help_text='JSON: {"CSV column": "email" | "traits.plan" | "tags.vip" | '
        '"consent.email_marketing" | "ignore", ...}; default: by column name',
    )
    match_by = serializers.ChoiceField(["external_id", "email"], required=False)


class CustomerImportListView(WorkspaceAPIView):
    serializer_class = CustomerImportOut
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        return CustomerImport.objects.all()

    @extend_schema(responses=CustomerImportOut(many=True), summary="Customer imports, newest first")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CustomerImportOut(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": CustomerImportIn},
        responses={202: CustomerImportOut},
        summary="Upload a customers CSV; it is processed in the background",
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise exceptions.ValidationError({"file": ["attach the CSV as `file`"]})
        if upload.size > MAX_IMPORT_BYTES:
            raise exceptions.ValidationError({"file": ["larger than 2 GB"]})
        mapping = request.data.get("mapping")
        if mapping:
            try:
                mapping = loads_bounded(mapping)
            except exceptions.ParseError as error:
                reason = f"must be JSON: {error.detail}"
                raise exceptions.ValidationError({"mapping": [reason]}) from error
        customer_import = customer_import_create(
            workspace=self.workspace,
            upload=upload,
            filename=upload.name or "upload.csv",
            mapping=mapping or None,
            match_by=request.data.get("match_by") or None,
            actor=self.actor.label,
        )
        return Response(CustomerImportOut(customer_import).data, status=status.HTTP_202_ACCEPTED)


class CustomerImportDetailView(WorkspaceAPIView):
    serializer_class = CustomerImportOut

    def get_queryset(self):
        return CustomerImport.objects.all()

    @extend_schema(responses=CustomerImportOut, summary="An import's status and progress")
    def get(self, request, id):
        return Response(CustomerImportOut(self.get_object()).data)


class CustomerImportErrorsView(WorkspaceAPIView):
    serializer_class = CustomerImportOut

    def get_queryset(self):
        return CustomerImport.objects.all()

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="row,column,error")
        },
        summary="The per-row error report as CSV",
    )
    def get(self, request, id):
        customer_import = self.get_object()
        response = StreamingHttpResponse(
            customer_import_errors_csv(customer_import=customer_import), content_type="text/csv"
        )
        name = f"import-{customer_import.id}-errors.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
