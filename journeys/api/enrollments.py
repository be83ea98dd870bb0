"""A journey's enrollments in the API: `/api/v1/journeys/<id>/enrollments` (list; enroll a
customer, with an `Idempotency-Key`), `…/<enrollment_id>` (with its step history) and
`…/<enrollment_id>/exit`. Views translate; journeys.services and journeys.engine decide (a
customer who may not enter is a 409 saying why)."""

import json

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from journeys import selectors, services
from journeys.api import serializers as s
from journeys.api.journeys import JourneyView, path_int, validated
from journeys.models import Enrollment
from masivo.tenancy.api.pagination import CreatedCursorPagination
from masivo.tenancy.api.serializers import ServiceErrorOut
from masivo.tenancy.errors import Conflict, InvalidInput
from profiles.models import Customer

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255  # the column's
MAX_CONTEXT_BYTES = 32_768
ID_PARAM = {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}
ENROLLMENT_ID = OpenApiParameter("enrollment_id", int, OpenApiParameter.PATH)


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) < 1:
        raise exceptions.ValidationError({name: ["a whole number, 1 or more"]})
    return int(raw)


def _idempotency_key(request) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput("the Idempotency-Key header is required", field=IDEMPOTENCY_HEADER)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"at most {MAX_KEY_LENGTH} characters", field=IDEMPOTENCY_HEADER)
    if "\x00" in key:
        raise InvalidInput("must not contain NUL characters", field=IDEMPOTENCY_HEADER)
    return key


def _replayed(journey, key: str, customer: Customer) -> Enrollment | None:
    """The enrollment this key made before: the same request again (another customer with the
    same key is a 409, as for messages)."""
    earlier = Enrollment.objects.filter(journey=journey, idempotency_key=key).first()
    if earlier is not None and earlier.customer_id != customer.id:
        raise Conflict("the Idempotency-Key was used to enroll another customer",
                       field=IDEMPOTENCY_HEADER)  # fmt: skip
    return earlier


class JourneyEnrollmentListView(JourneyView):
    serializer_class = s.JourneyEnrollmentOut
    pagination_class = CreatedCursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=Enrollment.State.values),
            OpenApiParameter("customer_id", ID_PARAM, description="a customer's id"),
        ],
        responses=s.JourneyEnrollmentOut(many=True),
        summary="The journey's enrollments, newest first",
    )
    def get(self, request, id):
        journey = self.get_object()
        state = request.query_params.get("state")
        if state is not None and state not in Enrollment.State.values:
            raise exceptions.ValidationError(
                {"state": [f"one of {', '.join(Enrollment.State.values)}"]}
            )
        enrollments = selectors.enrollments_list(
            journey, state=state, customer_id=_int_param(request, "customer_id")
        )
        page = self.paginate_queryset(enrollments)
        return self.get_paginated_response(s.JourneyEnrollmentOut(page, many=True).data)

    @extend_schema(
        request=s.JourneyEnrollIn,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="up to 255 characters; the same key answers the same enrollment",
            )
        ],
        responses={
            201: s.JourneyEnrollmentDetailOut,
            200: OpenApiResponse(
                s.JourneyEnrollmentDetailOut, description="the key's enrollment, made before"
            ),
            409: OpenApiResponse(
                ServiceErrorOut,
                description="the customer may not enter (why: not active, already in, re-entry, "
                "entry rules, audience, anonymous), or the key enrolled another customer",
            ),
        },
        summary="Enroll a customer (any trigger: the entry rules and re-entry apply)",
        description="The enrollment starts at the journey's first step; the next tick (every "
        "few seconds) moves it. `context` is what templates see as `journey`.",
    )
    def post(self, request, id):
        journey = self.get_object()
        key = _idempotency_key(request)
        data = validated(s.JourneyEnrollIn, request.data)
        customer = Customer.objects.filter(id=data["customer_id"]).first()
        if customer is None:
            raise InvalidInput(f"no customer {data['customer_id']} in this workspace",
                               field="customer_id")  # fmt: skip
        context = s.clean_json(data.get("context") or {})
        if len(json.dumps(context)) > MAX_CONTEXT_BYTES:
            raise InvalidInput(f"at most {MAX_CONTEXT_BYTES:,} bytes as JSON", field="context")
        earlier = _replayed(journey, key, customer)
        if earlier is not None:
            return Response(s.JourneyEnrollmentDetailOut(earlier).data)
        try:
            enrollment = services.enrollment_create(
                journey=journey, customer=customer, actor=self.actor, context=context,
                entry_key=data.get("entry_key", ""), idempotency_key=key,
            )  # fmt: skip
        except Conflict:
            earlier = _replayed(journey, key, customer)  # the same key, at the same moment
            if earlier is None:
                raise
            return Response(s.JourneyEnrollmentDetailOut(earlier).data)
        return Response(s.JourneyEnrollmentDetailOut(enrollment).data,
                        status=status.HTTP_201_CREATED)  # fmt: skip


class _EnrollmentView(JourneyView):
    serializer_class = s.JourneyEnrollmentDetailOut

    def enrollment(self, enrollment_id: str) -> Enrollment:
        found = selectors.enrollment_with_history(path_int(enrollment_id), self.get_object())
        if found is None:
            raise exceptions.NotFound()
        return found


class JourneyEnrollmentDetailView(_EnrollmentView):
    @extend_schema(
        parameters=[ENROLLMENT_ID],
        responses=s.JourneyEnrollmentDetailOut,
        summary="One enrollment, with its step history",
    )
    def get(self, request, id, enrollment_id):
        return Response(s.JourneyEnrollmentDetailOut(self.enrollment(enrollment_id)).data)


class JourneyEnrollmentExitView(_EnrollmentView):
    @extend_schema(
        parameters=[ENROLLMENT_ID],
        request=None,
        responses={
            200: s.JourneyEnrollmentDetailOut,
            409: OpenApiResponse(ServiceErrorOut, description="the enrollment has ended"),
        },
        summary="End an open enrollment now (exit reason: exited through the API)",
    )
    def post(self, request, id, enrollment_id):
        services.enrollment_end(enrollment=self.enrollment(enrollment_id), actor=self.actor,
                                reason="exited through the API")  # fmt: skip
        return Response(s.JourneyEnrollmentDetailOut(self.enrollment(enrollment_id)).data)
