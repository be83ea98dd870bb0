"""Journeys in the API: `/api/v1/journeys` (list, create), `…/<id>` (get, PATCH, DELETE of a
draft journey), `…/<id>/validate`, the actions publish, pause, resume and archive, the
versions, the stats, and `/api/v1/journeys/graph-schema`. Views translate; journeys.services
decides (a state error is a 409 naming `status`, a graph error a 400 naming
`graph.steps.<id>.<field>`)."""

import copy
from datetime import UTC

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from journeys import selectors, services
from journeys.api import serializers as s
from journeys.graph import GRAPH_SCHEMA, STEP_SCHEMAS, GraphError, InvalidGraph, graph_validate
from journeys.models import Journey, JourneyVersion
from masivo.tenancy.api.pagination import CreatedCursorPagination
from masivo.tenancy.api.serializers import ServiceErrorOut
from masivo.tenancy.api.views import WorkspaceAPIView
from messaging.models import Template

CONFLICT = OpenApiResponse(ServiceErrorOut, description="the journey's status does not allow it")
EDIT_CONFLICT = OpenApiResponse(
    ServiceErrorOut,
    description="the journey is archived (`status`), or the draft changed since the `revision` "
    "given (`revision`: read the journey again, then edit)",
)


def datetime_param(request, name: str):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise exceptions.ValidationError(
            {name: ["an ISO 8601 date-time with a time zone (Z or ±hh:mm)"]}
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError as error:
        raise exceptions.ValidationError({name: ["an ISO 8601 date-time"]}) from error


def path_int(raw: str) -> int:
    """A second id of a path (text in the route): a number, else nothing can match (0)."""
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63 else 0


def validated(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def graph_errors(graph) -> list[dict]:
    """Every problem of a graph, fields named from the body (`graph.steps.<id>.<field>`): the
    schema's and the checks it cannot say (journeys.graph), then templates that are not this
    workspace's or not of the step's channel (what publishing also refuses)."""
    try:
        graph_validate(graph)
        errors: list[GraphError] = []
    except InvalidGraph as error:
        errors = list(error.errors)
    if not errors:
        sends = {step_id: step for step_id, step in graph["steps"].items()
                 if step["type"] == "send"}  # fmt: skip
        channels = dict(Template.objects.filter(
            id__in={step["template_id"] for step in sends.values()}
        ).values_list("id", "channel"))  # fmt: skip
        for step_id, step in sends.items():
            channel = channels.get(step["template_id"])
            if channel is None:
                errors.append(GraphError(f"steps.{step_id}.template_id", "no such template"))
            elif channel != step["channel"]:
                wrong = f"a {channel} template, not {step['channel']}"
                errors.append(GraphError(f"steps.{step_id}.template_id", wrong))
    return [{"field": "graph" if e.path == "$" else f"graph.{e.path}", "message": e.message}
            for e in errors]  # fmt: skip


def whole_graph_schema() -> dict:
    """GRAPH_SCHEMA with each step type's schema in `$defs`: one document a client can validate
    a whole graph with (what it cannot say, the server's validate answers)."""
    schema = copy.deepcopy(GRAPH_SCHEMA)
    schema["$defs"] = {f"step_{kind}": step for kind, step in STEP_SCHEMAS.items()}
    steps = schema["properties"]["steps"]
    steps["additionalProperties"] = {
        "oneOf": [{"$ref": f"#/$defs/step_{kind}"} for kind in STEP_SCHEMAS]
    }
    return schema


class JourneyView(WorkspaceAPIView):
    serializer_class = s.JourneyOut
    path_model = Journey

    def get_queryset(self):
        return selectors.journeys_list()

    def detail(self, journey: Journey, status_code=200) -> Response:
        fresh = selectors.journeys_list().get(id=journey.id)
        return Response(s.JourneyOut(fresh).data, status=status_code)


class JourneyListView(JourneyView):
    pagination_class = CreatedCursorPagination

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=Journey.Status.values)],
        responses=s.JourneyOut(many=True),
        summary="Journeys, newest first",
    )
    def get(self, request):
        journeys = self.get_queryset()
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in Journey.Status.values:
                raise exceptions.ValidationError(
                    {"status": [f"one of {', '.join(Journey.Status.values)}"]}
                )
            journeys = journeys.filter(status=wanted)
        page = self.paginate_queryset(journeys)
        return self.get_paginated_response(s.JourneyOut(page, many=True).data)

    @extend_schema(
        request=s.JourneyIn,
        responses={201: s.JourneyOut},
        summary="Create a draft journey",
        description="A name, and the draft's graph if you have it (it may be incomplete: "
        "publishing checks it; validate says every problem before).",
    )
    def post(self, request):
        data = validated(s.JourneyIn, request.data)
        journey = services.journey_create(
            workspace=self.workspace, name=data["name"], description=data.get("description", ""),
            graph=data.get("graph"), actor=self.actor,
        )  # fmt: skip
        return self.detail(journey, status.HTTP_201_CREATED)


class JourneyDetailView(JourneyView):
    serializer_class = s.JourneyOut

    @extend_schema(responses=s.JourneyOut, summary="One journey, with the graph edited")
    def get(self, request, id):
        return self.detail(self.get_object())

    @extend_schema(
        request=s.JourneyUpdateIn,
        responses={200: s.JourneyOut, 409: EDIT_CONFLICT},
        summary="Rename, describe, or replace the draft's graph",
        description="A live journey keeps running on its published version: a graph given "
        "here is the draft of the next one, until publishing. With `revision` (as read), an "
        "edit of a draft changed since is a 409 naming `revision`, and nothing is saved.",
    )
    def patch(self, request, id):
        journey = self.get_object()
        data = validated(s.JourneyUpdateIn, request.data)
        services.journey_update(journey=journey, actor=self.actor, name=data.get("name"),
                                description=data.get("description"), graph=data.get("graph"),
                                revision=data.get("revision"))  # fmt: skip
        return self.detail(journey)

    @extend_schema(
        request=None,
        responses={204: None, 409: CONFLICT},
        summary="Delete a draft journey (one never published); archive the others",
    )
    def delete(self, request, id):
        services.journey_delete(journey=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class JourneyValidateView(JourneyView):
    serializer_class = s.JourneyValidationOut

    @extend_schema(
        request=s.JourneyValidateIn,
        responses=s.JourneyValidationOut,
        summary="Check the draft's graph (or the one given): every problem, by field",
        description="Always 200: `valid`, and `errors` naming each field "
        "(`graph.steps.<id>.<field>`). The same checks as publishing.",
    )
    def post(self, request, id):
        journey = self.get_object()
        data = validated(s.JourneyValidateIn, request.data)
        graph = data["graph"] if "graph" in data else selectors.journey_edited_graph(journey)
        errors = graph_errors(graph)
        return Response(s.JourneyValidationOut({"valid": not errors, "errors": errors}).data)


class JourneyPublishView(JourneyView):
    serializer_class = s.JourneyOut

    @extend_schema(
        request=s.JourneyPublishIn,
        responses={
            200: s.JourneyOut,
            409: OpenApiResponse(
                ServiceErrorOut,
                description="archived, no draft, or the draft changed since `revision`",
            ),
        },
        summary="Publish the draft: it becomes the live version, and a draft journey goes live",
        description="A graph error is a 400 naming its field (`graph.steps.<id>.<field>`); "
        "validate lists them all.",
    )
    def post(self, request, id):
        journey = self.get_object()
        data = validated(s.JourneyPublishIn, request.data)
        services.journey_publish(journey=journey, actor=self.actor, note=data.get("note", ""),
                                 move_waiting=data["move_waiting"],
                                 revision=data.get("revision"))  # fmt: skip
        return self.detail(journey)


class _StatusView(JourneyView):
    serializer_class = s.JourneyOut
    to = ""

    def post(self, request, id):
        journey = services.journey_set_status(journey=self.get_object(), status=self.to,
                                              actor=self.actor)  # fmt: skip
        return self.detail(journey)


class JourneyPauseView(_StatusView):
    to = Journey.Status.PAUSED

    @extend_schema(
        request=None,
        responses={200: s.JourneyOut, 409: CONFLICT},
        summary="Pause an active journey (enrollments hold where they are; nothing is sent)",
    )
    def post(self, request, id):
        return super().post(request, id)


class JourneyResumeView(_StatusView):
    to = Journey.Status.ACTIVE

    @extend_schema(
        request=None,
        responses={200: s.JourneyOut, 409: CONFLICT},
        summary="Resume a paused journey (what came due meanwhile runs at the next tick)",
    )
    def post(self, request, id):
        return super().post(request, id)


class JourneyArchiveView(_StatusView):
    to = Journey.Status.ARCHIVED

    @extend_schema(
        request=None,
        responses={200: s.JourneyOut, 409: CONFLICT},
        summary="Archive a journey for good (its open enrollments exit)",
    )
    def post(self, request, id):
        return super().post(request, id)


class JourneyVersionListView(JourneyView):
    serializer_class = s.JourneyVersionOut
    pagination_class = CreatedCursorPagination

    @extend_schema(responses=s.JourneyVersionOut(many=True), summary="Versions, newest first")
    def get(self, request, id):
        journey = self.get_object()
        page = self.paginate_queryset(JourneyVersion.objects.filter(journey=journey))
        context = {"live_version_id": journey.live_version_id}
        return self.get_paginated_response(
            s.JourneyVersionOut(page, many=True, context=context).data
        )


class JourneyVersionDetailView(JourneyView):
    serializer_class = s.JourneyVersionDetailOut

    @extend_schema(
        parameters=[OpenApiParameter("number", int, OpenApiParameter.PATH)],
        responses=s.JourneyVersionDetailOut,
        summary="One version, with its graph",
    )
    def get(self, request, id, number: str):
        journey = self.get_object()
        version = JourneyVersion.objects.filter(journey=journey, number=path_int(number)).first()
        if version is None:
            raise exceptions.NotFound()
        context = {"live_version_id": journey.live_version_id}
        return Response(s.JourneyVersionDetailOut(version, context=context).data)


class JourneyStatsView(JourneyView):
    serializer_class = s.JourneyStatsOut

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                description="only enrollments that entered since (the per-journey counts; "
                "steps and days are always whole)",
            ),
        ],
        responses=s.JourneyStatsOut,
        summary="Enrollments, conversion against the holdout, time to convert, and per step",
    )
    def get(self, request, id):
        journey = self.get_object()
        stats = selectors.journey_stats(journey, since=datetime_param(request, "since"))
        stats["steps"] = selectors.journey_step_stats(journey)
        return Response(s.JourneyStatsOut(stats).data)


class JourneyGraphSchemaView(WorkspaceAPIView):
    serializer_class = s.JourneyValidationOut

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="The JSON Schema (2020-12) of a journey graph",
        description="Every step type's fields are in `$defs`. What a schema cannot say (a "
        "step's targets exist, split percentages sum to 100, every step is reachable, rules "
        "and filters parse, templates are the workspace's) POST …/validate checks.",
    )
    def get(self, request):
        return Response(whole_graph_schema())
