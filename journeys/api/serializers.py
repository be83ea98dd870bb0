"""Journeys in the API: what requests carry (shapes and types; journeys.services and
journeys.graph check meaning) and what answers hold. Names start with Journey so that the
schema's components never collide with other apps'."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from journeys.models import Enrollment, Journey, JourneyVersion, StepRun
from journeys.selectors import step_history
from masivo.tenancy.api.strict import RefusesUnknownFields, StrictCharField
from profiles.normalize import strip_nul

MAX_ID = 2**63 - 1
MAX_REVISION = 2**31 - 1  # its column's limit


def clean_json(value):
    """Free-form JSON (a graph, a context) as Postgres stores it: strings and keys without NULs
    or lone surrogates. The parser has already bounded depth and refused non-finite numbers."""
    if isinstance(value, str):
        return strip_nul(value)
    if isinstance(value, dict):
        return {strip_nul(str(key)): clean_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    return value


class JourneyGraphField(serializers.DictField):
    """A journey graph: a JSON object (GET /api/v1/journeys/graph-schema says its shape)."""

    def to_internal_value(self, data):
        return clean_json(super().to_internal_value(data))


class JourneyIn(RefusesUnknownFields):
    name = StrictCharField(max_length=200)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True)
    graph = JourneyGraphField(
        required=False,
        help_text="the draft's graph (GET /api/v1/journeys/graph-schema); it may be incomplete "
        "until publishing, which checks it",
    )


# PATCH's body: every field optional, in the schema too (PATCH components are not split, so a
# partial JourneyIn would be documented as requiring `name`).
class JourneyUpdateIn(JourneyIn):
    name = StrictCharField(max_length=200, required=False)
    revision = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_REVISION,
        help_text="the `revision` you read with the journey: if the draft changed since, the "
        "edit is refused (409 naming `revision`) instead of overwriting someone else's change",
    )  # fmt: skip


class JourneyValidateIn(RefusesUnknownFields):
    graph = JourneyGraphField(required=False, help_text="a graph to check instead of the draft's")


class JourneyPublishIn(RefusesUnknownFields):
    note = StrictCharField(max_length=500, required=False, allow_blank=True,
                           help_text="what changed, for the version history")  # fmt: skip
    move_waiting = serializers.BooleanField(
        required=False,
        default=False,
        help_text="enrollments waiting at a step the new version still has (same id and type) "
        "move to it; the others finish on the version they entered",
    )
    revision = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_REVISION,
        help_text="the draft's revision you reviewed: a draft changed since is a 409",
    )  # fmt: skip


class JourneyEnrollIn(RefusesUnknownFields):
    customer_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    context = serializers.DictField(
        required=False, help_text="what templates see as `journey` (like a trigger's event)"
    )
    entry_key = StrictCharField(
        max_length=255, required=False, allow_blank=True,
        help_text="a keyed instance: one open enrollment per customer and key",
    )  # fmt: skip


class JourneyOut(serializers.ModelSerializer):
    status = serializers.ChoiceField(Journey.Status.choices)
    live_version = serializers.SerializerMethodField(help_text="the number enrollments enter")
    draft_version = serializers.SerializerMethodField(
        help_text="the number of the draft being edited (null: none)"
    )
    graph = serializers.SerializerMethodField(
        help_text="the draft's graph, or the live version's when there is no draft"
    )
    revision = serializers.SerializerMethodField(
        help_text="the revision of `graph` (the draft's; with no draft, the live version's, "
        "which the next draft starts from): +1 with each change; send it back with PATCH"
    )

    class Meta:
        model = Journey
        fields = ["id", "name", "description", "status", "live_version", "draft_version",
                  "revision", "created_by", "created_at", "updated_at", "graph"]  # fmt: skip

    def get_live_version(self, journey) -> int | None:
        return journey.live_version.number if journey.live_version_id else None

    def get_draft_version(self, journey) -> int | None:
        return journey.draft_number

    def get_revision(self, journey) -> int:
        if journey.draft_number is not None:
            return journey.draft_revision
        return journey.live_version.revision if journey.live_version_id else 1

    @extend_schema_field(serializers.DictField())
    def get_graph(self, journey) -> dict:
        if journey.draft_number is not None:
            return journey.draft_graph or {}
        return journey.live_version.graph if journey.live_version_id else {}


class JourneyVersionOut(serializers.ModelSerializer):
    is_draft = serializers.BooleanField()
    is_live = serializers.SerializerMethodField()

    class Meta:
        model = JourneyVersion
        fields = ["number", "is_draft", "is_live", "note", "published_at", "published_by",
                  "created_at"]  # fmt: skip

    def get_is_live(self, version) -> bool:
        return version.id == self.context.get("live_version_id")


class JourneyVersionDetailOut(JourneyVersionOut):
    graph = serializers.DictField()

    class Meta(JourneyVersionOut.Meta):
        fields = [*JourneyVersionOut.Meta.fields, "graph"]


class JourneyGraphErrorOut(serializers.Serializer):
    field = serializers.CharField(help_text="graph.steps.<id>.<field>, graph.trigger.event, …")
    message = serializers.CharField()


class JourneyValidationOut(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = JourneyGraphErrorOut(many=True, help_text="every problem found (empty when valid)")


class JourneyStepStatsOut(serializers.Serializer):
    entered = serializers.IntegerField(help_text="visits of the step, however they ended")
    waiting_now = serializers.IntegerField(help_text="open enrollments waiting at it")
    passed = serializers.IntegerField(help_text="visits finished")
    sent = serializers.IntegerField(help_text="visits that queued a message")
    delivered = serializers.IntegerField(help_text="those delivered (messaging's feedback)")
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    exited = serializers.IntegerField(help_text="visits of an exit step")
    converted = serializers.IntegerField(help_text="enrollments that reached the goal here")


class JourneyEnrollmentCountsOut(serializers.Serializer):
    total = serializers.IntegerField()
    active = serializers.IntegerField(help_text="open: moving or waiting")
    completed = serializers.IntegerField()
    converted = serializers.IntegerField()
    exited = serializers.IntegerField()


class JourneyGroupOut(serializers.Serializer):
    enrollments = serializers.IntegerField()
    converted = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="converted / enrollments")


class JourneyConversionOut(serializers.Serializer):
    treatment = JourneyGroupOut(help_text="enrollments that got the messages")
    holdout = JourneyGroupOut(help_text="enrollments held out: nothing sent")
    uplift = serializers.FloatField(
        allow_null=True, help_text="treatment rate minus holdout rate (null without both)"
    )


class JourneyDayOut(serializers.Serializer):
    day = serializers.DateField(help_text="UTC")
    entered = serializers.IntegerField()
    converted = serializers.IntegerField()


class JourneyStatsOut(serializers.Serializer):
    enrollments = JourneyEnrollmentCountsOut()
    conversion = JourneyConversionOut()
    median_seconds_to_convert = serializers.FloatField(
        allow_null=True, help_text="of the treatment's conversions"
    )
    per_day = JourneyDayOut(many=True, help_text="the last 30 days, oldest first")
    steps = serializers.DictField(child=JourneyStepStatsOut(), help_text="per step id")


class JourneyStepRunOut(serializers.Serializer):
    step = serializers.CharField()
    type = serializers.CharField(help_text="the step's type in the enrollment's version")
    label = serializers.CharField()
    visit = serializers.IntegerField(help_text="1 for the first visit of the step, 2, …")
    outcome = serializers.ChoiceField(StepRun.Outcome.choices)
    next_step = serializers.CharField()
    message_id = serializers.IntegerField(allow_null=True)
    detail = serializers.DictField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class JourneyEnrollmentOut(serializers.ModelSerializer):
    state = serializers.ChoiceField(Enrollment.State.choices)
    version = serializers.IntegerField(source="version.number", help_text="the version's number")
    waiting_for = serializers.DictField(allow_null=True)
    context = serializers.DictField()

    class Meta:
        model = Enrollment
        fields = ["id", "customer_id", "version", "state", "current_step", "entry_key",
                  "next_run_at", "waiting_for", "is_holdout", "variant", "context", "entered_at",
                  "finished_at", "converted_at", "exit_reason"]  # fmt: skip


class JourneyEnrollmentDetailOut(JourneyEnrollmentOut):
    steps = serializers.SerializerMethodField()

    class Meta(JourneyEnrollmentOut.Meta):
        fields = [*JourneyEnrollmentOut.Meta.fields, "steps"]

    @extend_schema_field(JourneyStepRunOut(many=True))
    def get_steps(self, enrollment) -> list:
        return JourneyStepRunOut(step_history(enrollment), many=True).data
