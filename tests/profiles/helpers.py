"""Helpers shared by the profiles API tests (plain functions; fixtures live in conftest.py)."""

from datetime import datetime

from django.test import Client

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.conftest import bearer_client, mint_secret_key


def client_with_role(workspace, role: Role) -> Client:
    return bearer_client(mint_secret_key(workspace, role=role))


def send(client: Client, method: str, url: str, body=None):
    """A JSON request; `body` None sends none."""
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, content_type="application/json")


def drf_time(value: datetime) -> str:
    """A datetime as DRF renders it (ISO 8601, UTC written as Z)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def rows(workspace, model, *fields, order_by=("id",)) -> list:
    """`model`'s rows in `workspace` as value tuples (a single field gives a flat list)."""
    with workspace_scope(workspace.id):
        queryset = model.objects.order_by(*order_by)
        if len(fields) == 1:
            return list(queryset.values_list(fields[0], flat=True))
        return list(queryset.values_list(*fields))


def get(workspace, model, **lookup):
    with workspace_scope(workspace.id):
        return model.objects.get(**lookup)


def settle(workspace) -> int:
    """Run the ingestion follow-up as the worker would: the tracking API stores messages as
    received, and who they are about (customers, traits, aliases, links) is decided here."""
    from masivo.pipeline import process_events_now

    with workspace_scope(workspace.id):
        return process_events_now(workspace=workspace)
