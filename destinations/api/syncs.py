"""Audience syncs in the API: `/api/v1/destinations/syncs` (list by audience or destination,
create), `…/<id>` (get, PATCH, DELETE), the actions run, pause and resume, a sync's runs
(`…/<id>/runs`, one run, replay) and its failed records.

Syncing audiences is marketing work (marketers, admins, owners); reading is for every role.
Views translate; destinations.services decides, destinations.syncing runs.
"""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from audiences.models import Audience
from destinations import selectors, services
from destinations.api import serializers as s
from destinations.models import AudienceSync, Destination, SyncRun
from masivo.tenancy.api.pagination import CreatedCursorPagination
from masivo.tenancy.api.views import WorkspaceAPIView
from masivo.tenancy.errors import InvalidInput

ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": s.MAX_ID}
FILTERS = [
    OpenApiParameter("audience_id", ID_SCHEMA, description="syncs of this audience"),
    OpenApiParameter("destination_id", ID_SCHEMA, description="syncs to this destination"),
]


def _id_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= s.MAX_ID:
        raise exceptions.ValidationError({name: ["a whole number, 1 or more"]})
    return int(raw)


def _in_workspace(model, object_id: int, *, field: str, what: str):
    found = model.objects.filter(id=object_id).first()
    if found is None:
        raise InvalidInput(f"no {what} {object_id} in this workspace", field=field)
    return found


def syncs_data(syncs) -> list[dict]:
    """Syncs with their last run and lag: three queries for any number of syncs."""
    syncs = list(syncs)
    ids = [sync.id for sync in syncs]
    now = timezone.now()
    lags = {sync_id: selectors.sync_lag_seconds(finished, now)
            for sync_id, finished in selectors.last_successes(ids).items()}  # fmt: skip
    context = {"last_runs": selectors.last_runs(ids), "lags": lags}
    return s.AudienceSyncOut(syncs, many=True, context=context).data


class SyncView(WorkspaceAPIView):
    serializer_class = s.AudienceSyncOut
    path_model = AudienceSync

    def get_queryset(self):
        return selectors.syncs_list()

    def detail(self, sync: AudienceSync, status_code=200) -> Response:
        return Response(syncs_data(self.get_queryset().filter(id=sync.id))[0], status=status_code)


class SyncListView(SyncView):
    pagination_class = CreatedCursorPagination

    @extend_schema(
        parameters=FILTERS, responses=s.AudienceSyncOut(many=True), summary="Audience syncs"
    )
    def get(self, request):
        syncs = selectors.syncs_list(
            audience_id=_id_param(request, "audience_id"),
            destination_id=_id_param(request, "destination_id"),
        )
        page = self.paginate_queryset(syncs)
        return self.get_paginated_response(syncs_data(page))

    @extend_schema(
        request=s.AudienceSyncCreateIn,
        responses={201: s.AudienceSyncOut},
        summary="Sync an audience to a destination (the first run is queued)",
        description="Give `remote_audience_id` (an audience that exists at the platform) or "
        "`remote_audience_name` (Masivo creates it now).",
    )
    def post(self, request):
        data = s.validated(s.AudienceSyncCreateIn, request.data)
        audience = _in_workspace(Audience, data.pop("audience_id"), field="audience_id",
                                 what="audience")  # fmt: skip
        destination = _in_workspace(Destination, data.pop("destination_id"),
                                    field="destination_id", what="destination")  # fmt: skip
        sync = services.sync_create(
            destination=destination, audience=audience, actor=self.actor, **data
        )
        return self.detail(sync, status.HTTP_201_CREATED)


class SyncDetailView(SyncView):
    @extend_schema(responses=s.AudienceSyncOut, summary="One audience sync, with its last run")
    def get(self, request, id):
        return self.detail(self.get_object())

    @extend_schema(
        request=s.AudienceSyncUpdateIn,
        responses=s.AudienceSyncOut,
        summary="Change the mode, interval or identifiers (the fields given)",
    )
    def patch(self, request, id):
        sync = self.get_object()
        data = s.validated(s.AudienceSyncUpdateIn, request.data)
        sync = services.sync_update(sync=sync, actor=self.actor, **data)
        return self.detail(sync)

    @extend_schema(
        request=None,
        responses={204: None},
        summary="Stop syncing (the remote audience stays at the platform)",
    )
    def delete(self, request, id):
        services.sync_delete(sync=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SyncRunNowView(SyncView):
    serializer_class = s.AudienceSyncRunOut

    @extend_schema(
        request=None,
        responses={202: s.AudienceSyncRunOut},
        summary="Run now (or the run already queued or running)",
    )
    def post(self, request, id):
        run = services.sync_run_now(sync=self.get_object(), actor=self.actor)
        return Response(s.AudienceSyncRunOut(run).data, status=status.HTTP_202_ACCEPTED)


class SyncPauseView(SyncView):
    @extend_schema(
        request=None,
        responses=s.AudienceSyncOut,
        summary="Pause: no new runs (a running one stops after its current batch)",
    )
    def post(self, request, id):
        return self.detail(services.sync_set_paused(sync=self.get_object(), paused=True,
                                                    actor=self.actor))  # fmt: skip


class SyncResumeView(SyncView):
    @extend_schema(request=None, responses=s.AudienceSyncOut, summary="Resume: next run now")
    def post(self, request, id):
        return self.detail(services.sync_set_paused(sync=self.get_object(), paused=False,
                                                    actor=self.actor))  # fmt: skip


class SyncRunsView(SyncView):
    serializer_class = s.AudienceSyncRunOut
    pagination_class = CreatedCursorPagination

    @extend_schema(
        responses=s.AudienceSyncRunOut(many=True),
        summary="A sync's runs, newest first: counts, skipped by reason, progress, errors",
    )
    def get(self, request, id):
        page = self.paginate_queryset(selectors.sync_runs(self.get_object()))
        return self.get_paginated_response(s.AudienceSyncRunOut(page, many=True).data)


class _RunOfSyncView(SyncView):
    serializer_class = s.AudienceSyncRunOut

    def run(self, run_id: int) -> SyncRun:
        """A run of the sync in the path (another sync's run is a 404)."""
        run = selectors.sync_runs(self.get_object()).filter(id=run_id).first()
        if run is None:
            raise exceptions.NotFound()
        return run


class SyncRunView(_RunOfSyncView):
    @extend_schema(responses=s.AudienceSyncRunOut, summary="One run")
    def get(self, request, id, run_id):
        return Response(s.AudienceSyncRunOut(self.run(run_id)).data)


class SyncRunReplayView(_RunOfSyncView):
    @extend_schema(
        request=None,
        responses={202: s.AudienceSyncRunOut},
        summary="Run a dead or failed run again (a new run: only what is still not done is sent)",
    )
    def post(self, request, id, run_id):
        run = services.run_replay(run=self.run(run_id), actor=self.actor)
        return Response(s.AudienceSyncRunOut(run).data, status=status.HTTP_202_ACCEPTED)


class SyncFailedRecordsView(SyncView):
    serializer_class = s.AudienceSyncRecordOut
    pagination_class = CreatedCursorPagination

    @extend_schema(
        responses=s.AudienceSyncRecordOut(many=True),
        summary="Customers whose last batch the platform refused, with the reason",
        description="The next run sends them again.",
    )
    def get(self, request, id):
        page = self.paginate_queryset(selectors.failed_records(self.get_object()))
        return self.get_paginated_response(s.AudienceSyncRecordOut(page, many=True).data)
