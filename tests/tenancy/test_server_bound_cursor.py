"""masivo.sql.server_bound_cursor runs in the current workspace scope, whatever ran before."""

import pytest
from django.db import IntegrityError

from masivo.sql import server_bound_cursor
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_it_sees_only_the_current_workspace_even_as_the_first_statement(workspace, other_workspace):
    with workspace_scope(workspace.id):
        mine = CustomerFactory(workspace=workspace)
    with workspace_scope(other_workspace.id):
        CustomerFactory(workspace=other_workspace)
        Customer.objects.count()  # the connection's settings now name the other workspace
    with workspace_scope(workspace.id), server_bound_cursor() as cursor:
        cursor.execute("SELECT id FROM profiles_customer ORDER BY id")
        assert cursor.fetchall() == [(mine.id,)]


def test_its_errors_are_djangos(workspace):
    insert = (
        "INSERT INTO profiles_erasuretombstone "
        "(workspace_id, identifier_hash, erased_at, erased_by, customer_id_was) "
        "VALUES (%s, 'h', now(), 'test', 0)"
    )
    with workspace_scope(workspace.id):
        with server_bound_cursor() as cursor:
            cursor.execute(insert, [workspace.id])
        with pytest.raises(IntegrityError), server_bound_cursor() as cursor:
            cursor.execute(insert, [workspace.id])
