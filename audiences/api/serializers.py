from rest_framework import serializers

from audiences.models import Audience, ListUpload, MembershipChange, Recalculation
from audiences.services import DESCRIPTION_MAX_LENGTH, LIST_MEMBERS_CHANGE_MAX, NAME_MAX_LENGTH
from masivo.tenancy.api.strict import RefusesUnknownFields


class AudienceOut(serializers.ModelSerializer):
    class Meta:
        model = Audience
        fields = [
            "id", "name", "description", "kind", "rules", "schedule", "is_realtime", "version",
            "size", "last_run_at", "last_run_entered", "last_run_exited", "last_run_duration_ms",
            "next_run_at", "dependencies", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["dependencies"]


class AudienceIn(RefusesUnknownFields):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=DESCRIPTION_MAX_LENGTH
    )
    kind = serializers.ChoiceField(Audience.Kind.choices, default=Audience.Kind.RULES)
    rules = serializers.JSONField(required=False, help_text="the rule document (docs/audiences.md)")
    schedule = serializers.ChoiceField(Audience.Schedule.choices, required=False)
    is_realtime = serializers.BooleanField(required=False)


class AudienceUpdateIn(AudienceIn):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH, required=False)
    kind = None


class AudienceMemberOut(serializers.Serializer):
    customer_id = serializers.IntegerField()
    external_id = serializers.CharField(source="customer.external_id", allow_null=True)
    email = serializers.CharField(source="customer.email", allow_null=True)
    since = serializers.DateTimeField()
    source = serializers.CharField()


class MembersChangeIn(serializers.Serializer):
    add = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=LIST_MEMBERS_CHANGE_MAX
    )
    remove = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=LIST_MEMBERS_CHANGE_MAX
    )


class ChangeOut(serializers.ModelSerializer):
    class Meta:
        model = MembershipChange
        fields = ["id", "customer_id", "kind", "source", "reason", "changed_at"]


class RecalculationOut(serializers.ModelSerializer):
    duration_ms = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Recalculation
        fields = [
            "id", "version", "reason", "status", "size", "entered", "exited", "error",
            "attempts", "retry_at", "created_at", "started_at", "finished_at", "duration_ms",
        ]  # fmt: skip


class PreviewIn(serializers.Serializer):
    rules = serializers.JSONField()


class PreviewOut(serializers.Serializer):
    count = serializers.IntegerField()
    sample = serializers.ListField(child=serializers.DictField())


class ExplainOut(serializers.Serializer):
    audience_id = serializers.IntegerField()
    customer_id = serializers.IntegerField()
    matches = serializers.BooleanField(help_text="what the rules say now")
    is_member = serializers.BooleanField(help_text="current membership (last recalculation)")
    explanation = serializers.DictField(help_text="each node: result and the deciding values")


class ListUploadOut(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    problems_url = serializers.SerializerMethodField()

    class Meta:
        model = ListUpload
        fields = [
            "id", "audience", "filename", "identifier", "create_missing", "status", "progress",
            "size_bytes", "rows_added", "rows_already", "rows_created", "rows_unmatched",
            "rows_invalid", "error", "created_by", "created_at", "finished_at", "problems_url",
        ]  # fmt: skip

    def get_problems_url(self, obj) -> str:
        return f"/api/v1/list-uploads/{obj.id}/problems"


class ListUploadIn(serializers.Serializer):
    file = serializers.FileField(help_text="UTF-8 CSV: one identifier per row (header optional)")
    identifier = serializers.ChoiceField(ListUpload.Identifier.choices)
    create_missing = serializers.BooleanField(default=False)
