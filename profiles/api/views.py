"""Native REST API for customers, consent, devices and events (secret key)."""

from datetime import UTC

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from masivo.tenancy.api.pagination import CursorPagination
from masivo.tenancy.api.permissions import HasWorkspaceRole
from masivo.tenancy.api.strict import refuse_non_strings
from masivo.tenancy.api.views import WorkspaceAPIView
from masivo.tenancy.errors import InvalidInput
from masivo.tenancy.roles import Permission
from profiles import normalize, selectors
from profiles.api import serializers as s
from profiles.consent import consent_history_of, consent_update, may_contact
from profiles.ingestion import ingest_batch
from profiles.models import ConsentChange, ConsentPurpose, Customer
from profiles.services import customers as customer_services
from profiles.services import devices as device_services
from profiles.services.settings import profile_settings_get, profile_settings_update
from profiles.tracked import Rejection
from profiles.tracking import parse_native_event

MAX_EVENTS_PER_REQUEST = 1000
ALL_REJECTED = "no event was accepted; `rejected` gives each one's reason"


class NewestEventsFirst(CursorPagination):
    ordering = ("-occurred_at", "-id")


def _since(request, name: str):
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        parsed = parse_datetime(value)  # "" is no date-time either: a 400, as the schema says
    except ValueError:  # well-formed but impossible, like February 30
        parsed = None
    if parsed is None:
        raise exceptions.ValidationError({name: ["must be an ISO 8601 date-time"]})
    if parsed.tzinfo is None:  # ambiguous: the schema's date-time (RFC 3339) has a zone
        raise exceptions.ValidationError(
            {name: ["must be an ISO 8601 date-time with a time zone (Z or ±hh:mm)"]}
        )
    try:
        # In UTC: PostgreSQL refuses offsets past 15:59 that Python parses (-22:34).
        return parsed.astimezone(UTC)
    except OverflowError as error:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise exceptions.ValidationError({name: ["must be an ISO 8601 date-time"]}) from error


class CustomerScopedView(WorkspaceAPIView):
    """Views under /customers/{id}/…: the id is a customer of this workspace, else 404."""

    path_model = Customer

    def customer(self) -> Customer:
        return self.get_object()

    def get_queryset(self):
        return Customer.objects.all()


class CustomerListView(WorkspaceAPIView):
    serializer_class = s.CustomerOut

    def get_queryset(self):
        params = self.request.query_params
        return selectors.customers_list(
            email=params.get("email"),
            external_id=params.get("external_id"),
            updated_since=_since(self.request, "updated_since"),
            search=params.get("search"),
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("email", str),
            OpenApiParameter("external_id", str),
            OpenApiParameter(
                "updated_since", OpenApiTypes.DATETIME, description="ISO 8601 date-time"
            ),
            OpenApiParameter("search", str, description="email/name prefix, exact id or phone"),
        ],
        responses=s.CustomerOut(many=True),
        summary="List customers",
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.CustomerOut(page, many=True).data)

    @extend_schema(
        request=s.CustomerIn,
        responses={201: s.CustomerOut, 200: s.CustomerOut},
        summary="Create, or update the customer with the same external_id (else email)",
    )
    def post(self, request):
        refuse_non_strings(request.data, s.PROFILE_FIELD_NAMES)
        customer, created = customer_services.customer_upsert(
            workspace=self.workspace, data=request.data
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(s.CustomerOut(customer).data, status=code)


class CustomerDetailView(CustomerScopedView):
    serializer_class = s.CustomerOut

    @extend_schema(responses=s.CustomerOut, summary="One customer")
    def get(self, request, id):
        return Response(s.CustomerOut(self.customer()).data)

    @extend_schema(request=s.CustomerIn, responses=s.CustomerOut, summary="Update fields")
    def patch(self, request, id):
        customer = self.customer()  # another workspace's is a 404 whatever the body
        refuse_non_strings(request.data, s.PROFILE_FIELD_NAMES)
        customer = customer_services.customer_update(customer=customer, data=request.data)
        return Response(s.CustomerOut(customer).data)

    @extend_schema(request=None, responses={204: None}, summary="Delete with events and devices")
    def delete(self, request, id):
        customer_services.customer_delete(customer=self.customer())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerTagsView(CustomerScopedView):
    serializer_class = s.CustomerOut

    @extend_schema(request=s.TagsIn, responses=s.CustomerOut, summary="Set tags (merged)")
    def patch(self, request, id):
        customer = self.customer()  # another workspace's is a 404 whatever the body
        tags = request.data.get("tags") if isinstance(request.data, dict) else None
        if not isinstance(tags, dict):  # null too: as the schema says, `tags` is an object
            reason = "an object of key → string, number or boolean"
            raise exceptions.ValidationError({"tags": [reason]})
        customer = customer_services.customer_tags_patch(customer=customer, tags=tags)
        return Response(s.CustomerOut(customer).data)

    @extend_schema(
        parameters=[OpenApiParameter("key", str, many=True, description="omit to remove all")],
        request=None,
        responses={200: s.CustomerOut},
        summary="Remove tags",
    )
    def delete(self, request, id):
        keys = request.query_params.getlist("key") or None
        customer = customer_services.customer_tags_delete(customer=self.customer(), keys=keys)
        return Response(s.CustomerOut(customer).data)


class CustomerConsentView(CustomerScopedView):
    serializer_class = s.ConsentOut

    def _body(self, customer):
        settings = profile_settings_get(workspace=self.workspace)
        purposes = {
            purpose: {
                "status": None,
                "at": None,
                "source": None,
                **customer.consent.get(purpose, {}),
                "may_contact": may_contact(customer, purpose, settings=settings),
            }
            for purpose in ConsentPurpose.values
        }
        history = consent_history_of(customer, "purposes")
        vendor_history = consent_history_of(customer, ConsentChange.VENDOR)
        string_history = consent_history_of(customer, ConsentChange.CONSENT_STRING)
        return {
            "regime": settings.consent_regime,
            "purposes": purposes,
            "history": s.ConsentChangeOut(history, many=True).data,
            "vendor_consent_required": settings.vendor_consent_required,
            "vendors": customer.consent_vendors,
            "vendor_history": s.VendorConsentChangeOut(vendor_history, many=True).data,
            "consent_string": customer.consent_string or None,
            "consent_string_version": customer.consent_string_version or None,
            "consent_string_history": s.ConsentStringChangeOut(string_history, many=True).data,
        }

    @extend_schema(
        responses=s.ConsentOut,
        summary="Consent per purpose and per vendor, the consent string, with history",
    )
    def get(self, request, id):
        return Response(self._body(self.customer()))

    @extend_schema(request=s.ConsentIn, responses=s.ConsentOut, summary="Record consent decisions")
    def patch(self, request, id):
        body = request.data if isinstance(request.data, dict) else {}
        source = body.get("source", "api")
        if isinstance(source, str):
            source = normalize.strip_nul(source)
        if not isinstance(source, str) or not source.strip() or len(source) > 100:
            raise exceptions.ValidationError({"source": ["a string of 1 to 100 characters"]})
        customer = consent_update(
            customer=self.customer(), changes=body.get("consent"), source=source.strip()
        )
        return Response(self._body(customer))


class CustomerIdentifyView(CustomerScopedView):
    serializer_class = s.CustomerOut

    @extend_schema(
        request=s.IdentifyIn,
        responses=s.CustomerOut,
        summary="Make an anonymous customer known; merges into an existing owner of the id",
    )
    def post(self, request, id):
        body = request.data if isinstance(request.data, dict) else {}
        customer = customer_services.customer_identify(
            customer=self.customer(),
            external_id=body.get("external_id"),
            email=body.get("email"),
            actor=self.actor.label,
        )
        return Response(s.CustomerOut(customer).data)


class CustomerEventsView(CustomerScopedView):
    serializer_class = s.EventOut
    pagination_class = NewestEventsFirst

    @extend_schema(responses=s.EventOut(many=True), summary="A customer's events, newest first")
    def get(self, request, id):
        events = selectors.customer_events(customer=self.customer())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(s.EventOut(page, many=True).data)


class CustomerTokenView(CustomerScopedView):
    serializer_class = s.CustomerTokenOut

    @extend_schema(
        request=None,
        responses=s.CustomerTokenOut,
        summary="A short-lived token that lets an app (write key) register this customer's devices",
    )
    def post(self, request, id):
        token = device_services.customer_token_issue(customer=self.customer())
        expires_in = int(device_services.CUSTOMER_TOKEN_MAX_AGE.total_seconds())
        return Response({"customer_token": token, "expires_in": expires_in})


class DevicePermission(HasWorkspaceRole):
    """Secret keys need `edit_marketing`; a write key needs a customer token for this customer
    (checked in the view, where the customer is known)."""

    def has_permission(self, request, view):
        if getattr(request, "is_write_key", False):
            return True
        return super().has_permission(request, view)


class CustomerDevicesView(CustomerScopedView):
    serializer_class = s.DeviceOut
    accepts_write_key = True
    permission_classes = [DevicePermission]
    pagination_class = None  # a customer has a handful of devices: GET answers them all

    def _customer_for_write_key(self, request) -> Customer:
        customer = self.customer()
        if getattr(request, "is_write_key", False):
            body = request.data if isinstance(request.data, dict) else {}
            token = request.headers.get("X-Customer-Token") or body.get("customer_token")
            if (
                not isinstance(token, str)
                or device_services.customer_token_verify(
                    token=token, workspace_id=self.workspace.id
                )
                != customer.id
            ):
                raise exceptions.PermissionDenied(
                    "with a write key, registering a device needs a valid customer token for "
                    "this customer (X-Customer-Token); get one from POST /customers/{id}/token"
                )
        return customer

    @extend_schema(request=s.DeviceIn, responses=s.DeviceOut, summary="Register a push device")
    def patch(self, request, id):
        customer = self._customer_for_write_key(request)
        body = request.data if isinstance(request.data, dict) else None
        device = device_services.device_register(customer=customer, data=body)
        return Response(s.DeviceOut(device).data)

    @extend_schema(
        parameters=[OpenApiParameter("device_token", str, description="omit to remove all")],
        request=None,
        responses={204: None},
        summary="Remove one device or all",
    )
    def delete(self, request, id):
        customer = self._customer_for_write_key(request)
        device_services.device_remove(
            customer=customer, token=request.query_params.get("device_token")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=s.DeviceOut(many=True), summary="A customer's devices")
    def get(self, request, id):
        if getattr(request, "is_write_key", False):
            raise exceptions.PermissionDenied("listing devices needs a secret key")
        return Response(s.DeviceOut(self.customer().devices.order_by("-id"), many=True).data)


class CustomerEraseView(CustomerScopedView):
    serializer_class = s.CustomerOut
    write_permission = Permission.MANAGE_WORKSPACE

    @extend_schema(request=None, responses={204: None}, summary="Erase (right to be forgotten)")
    def post(self, request, id):
        customer_services.customer_erase(customer=self.customer(), actor=self.actor.label)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerExportView(CustomerScopedView):
    serializer_class = s.CustomerOut

    @extend_schema(responses={200: dict}, summary="Everything held about this customer")
    def get(self, request, id):
        return Response(selectors.customer_export(customer=self.customer()))


class EventListView(WorkspaceAPIView):
    serializer_class = s.EventOut
    pagination_class = NewestEventsFirst

    @extend_schema(
        parameters=[
            OpenApiParameter("name", str),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO 8601 date-time"),
        ],
        responses=s.EventOut(many=True),
        summary="Events, newest first",
    )
    def get(self, request):
        events = selectors.events_list(
            name=request.query_params.get("name"), since=_since(request, "since")
        )
        page = self.paginate_queryset(events)
        return self.get_paginated_response(s.EventOut(page, many=True).data)

    @extend_schema(
        request=s.EventsIn,
        responses={200: s.IngestOut, 400: s.IngestRejectedOut},
        summary="Send one event ({...}) or a batch ({events: [...]}, up to 1,000)",
    )
    def post(self, request):
        body = request.data
        items = body.get("events") if isinstance(body, dict) and "events" in body else [body]
        if not isinstance(items, list) or not items:
            raise exceptions.ValidationError({"events": ["a non-empty array of events"]})
        if len(items) > MAX_EVENTS_PER_REQUEST:
            raise exceptions.ValidationError(
                {"events": [f"at most {MAX_EVENTS_PER_REQUEST} events per request"]}
            )
        received_at = timezone.now()
        messages, rejected = [], []
        for index, item in enumerate(items):
            try:
                messages.append(parse_native_event(item, index=index, received_at=received_at))
            except InvalidInput as error:
                rejected.append(Rejection(index, error.message, field=error.field))
        result = ingest_batch(
            workspace=self.workspace, messages=messages, source="api", now=received_at
        )
        rejected = sorted([*rejected, *result.rejected], key=lambda r: r.index)
        body = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": [r.as_dict() for r in rejected],
            "warnings": result.warnings,
        }
        if len(rejected) == len(items):
            # The error shape's detail and code, with the result: every event has its reason.
            return Response({"detail": ALL_REJECTED, "code": "invalid", **body}, status=400)
        return Response(body)


class ProfileSettingsView(WorkspaceAPIView):
    serializer_class = s.ProfileSettingsOut
    write_permission = Permission.MANAGE_WORKSPACE

    @extend_schema(responses=s.ProfileSettingsOut, summary="Profile and ingestion settings")
    def get(self, request):
        return Response(s.ProfileSettingsOut(profile_settings_get(workspace=self.workspace)).data)

    @extend_schema(request=s.ProfileSettingsIn, responses=s.ProfileSettingsOut, summary="Change")
    def patch(self, request):
        data = s.ProfileSettingsIn(data=request.data)
        data.is_valid(raise_exception=True)
        settings = profile_settings_update(workspace=self.workspace, changes=data.validated_data)
        return Response(s.ProfileSettingsOut(settings).data)
