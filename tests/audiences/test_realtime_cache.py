"""Each worker keeps a copy of its workspaces' real-time index (audiences.realtime_cache): the
audiences a changed key touches, their rules and the consent regime. A copy that no longer
matches the database is never used to judge: another process that changes the rules, the
regime or the set of real-time audiences is seen by this one on its next batch, whoever wrote
the change (a service or a hand-written UPDATE)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audiences.models import Audience, Membership
from audiences.realtime import realtime_memberships_update
from audiences.realtime_cache import realtime_index_cached, realtime_index_forget
from audiences.services import audience_create, audience_delete, audience_update
from masivo.tenancy.context import workspace_scope
from profiles.services.settings import profile_settings_update
from tests.factories import CustomerFactory

ROOT = Path(__file__).resolve().parents[2]
COUNTRY = {"field:country"}

# Another worker with the same settings and test database: reads "<workspace id> <customer
# id>" lines, runs real time for that customer's country change and answers
# "<audience id>:<entered>:<exited> …" (sorted) and the statements it ran.
OTHER_PROCESS = """
import sys
import django
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from audiences.realtime import realtime_memberships_update
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import Workspace
for line in sys.stdin:
    workspace_id, customer_id = map(int, line.split())
    with workspace_scope(workspace_id), CaptureQueriesContext(connection) as queries:
        workspace = Workspace.objects.get(id=workspace_id)
        result = realtime_memberships_update(
            workspace=workspace, changes={customer_id: {"field:country"}}
        )
    answer = ",".join(f"{a}:{e}:{x}" for a, (e, x) in sorted(result.items())) or "-"
    print(answer, len(queries) - 1, flush=True)
"""


class OtherWorker:
    def __init__(self):
        database = connection.settings_dict
        url = (
            f"postgresql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
            f"{database['PORT']}/{database['NAME']}"
        )
        env = os.environ | {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "masivo.settings"}
        env.pop("DATABASE_OWNER_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-c", OTHER_PROCESS],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def judge(self, workspace, customer) -> tuple[str, int]:
        """Real time in the other process; (its answer, the statements it ran)."""
        self.process.stdin.write(f"{workspace.id} {customer.id}\n")
        self.process.stdin.flush()
        answer, statements = self.process.stdout.readline().split()
        return answer, int(statements)

    def close(self):
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0


@pytest.fixture(autouse=True)
def _no_copies():
    realtime_index_forget()
    yield
    realtime_index_forget()


def country_audience(workspace, name: str, country: str) -> Audience:
    with workspace_scope(workspace.id):
        return audience_create(
            workspace=workspace,
            data={
                "name": name,
                "schedule": "never",
                "is_realtime": True,
                "rules": {
                    "version": 1,
                    "root": {"profile": {"field": "country", "op": "eq", "value": country}},
                },
            },
        )


def member_ids(workspace, audience) -> list[int]:
    with workspace_scope(workspace.id):
        return sorted(
            Membership.objects.filter(audience=audience).values_list("customer_id", flat=True)
        )


@pytest.mark.django_db(transaction=True)
def test_rules_changed_by_another_process_are_used_on_the_next_batch(workspace):
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, country="MX")
    audience = country_audience(workspace, "Mexico", "MX")
    other = OtherWorker()
    try:
        # The first batch builds the copy (one statement), then takes the audiences' locks,
        # prepares and runs the evaluation, and writes the enter (one statement, under the
        # locks already held); the next ones reuse the copy and the prepared statement.
        assert other.judge(workspace, customer) == (f"{audience.id}:1:0", 1 + 1 + 2 + 1)
        assert other.judge(workspace, customer) == (f"{audience.id}:0:0", 1 + 1)

        with workspace_scope(workspace.id):
            audience_update(
                audience=audience,
                data={"rules": {"version": 1, "root": {"profile": {
                    "field": "country", "op": "eq", "value": "AR"}}}},
            )  # fmt: skip
        # Judged with the old copy, found stale by that statement, rebuilt, locked and judged
        # again with the new rules (the same prepared statement: only a value changed), and
        # the exit written.
        assert other.judge(workspace, customer) == (f"{audience.id}:0:1", 2 + 1 + 1 + 1 + 1)
        assert member_ids(workspace, audience) == []

        # A hand-written UPDATE is a change too (no writer has to remember anything).
        with workspace_scope(workspace.id), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audiences_audience SET rules = jsonb_set(rules, '{root,profile,value}', "
                "'\"MX\"') WHERE id = %s",
                [audience.id],
            )
        assert other.judge(workspace, customer)[0] == f"{audience.id}:1:0"
        assert member_ids(workspace, audience) == [customer.id]
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_audiences_created_deleted_or_made_realtime_elsewhere_are_seen(workspace):
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, country="MX")
    mexico = country_audience(workspace, "Mexico", "MX")
    other = OtherWorker()
    try:
        assert other.judge(workspace, customer)[0] == f"{mexico.id}:1:0"
        also = country_audience(workspace, "Also Mexico", "MX")
        assert other.judge(workspace, customer)[0] == f"{mexico.id}:0:0,{also.id}:1:0"

        with workspace_scope(workspace.id):
            audience_update(audience=mexico, data={"is_realtime": False})
        assert other.judge(workspace, customer)[0] == f"{also.id}:0:0"
        with workspace_scope(workspace.id):
            audience_delete(audience=Audience.objects.get(id=also.id))
        assert other.judge(workspace, customer)[0] == "-"
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_a_consent_regime_changed_elsewhere_is_used_on_the_next_batch(workspace):
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, country="MX", consent={})
        profile_settings_update(workspace=workspace, changes={"consent_regime": "opt_in"})
        audience = audience_create(
            workspace=workspace,
            data={
                "name": "Reachable",
                "is_realtime": True,
                "rules": {"version": 1, "root": {"all": [
                    {"profile": {"field": "country", "op": "eq", "value": "MX"}},
                    {"consent": {"purpose": "email_marketing", "allowed": True}}]}},
            },
        )  # fmt: skip
    other = OtherWorker()
    try:
        assert other.judge(workspace, customer)[0] == f"{audience.id}:0:0"  # not recorded: no
        with workspace_scope(workspace.id):
            profile_settings_update(workspace=workspace, changes={"consent_regime": "opt_out"})
        assert other.judge(workspace, customer)[0] == f"{audience.id}:1:0"  # now allowed
    finally:
        other.close()


@pytest.mark.django_db
def test_a_copy_is_reused_while_it_matches_and_rebuilt_when_it_does_not(workspace):
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, country="MX")
    audience = country_audience(workspace, "Mexico", "MX")
    with workspace_scope(workspace.id):
        realtime_memberships_update(workspace=workspace, changes={customer.id: COUNTRY})
        copy = realtime_index_cached(workspace.id)
        with CaptureQueriesContext(connection) as queries:
            assert realtime_memberships_update(
                workspace=workspace, changes={customer.id: COUNTRY}
            ) == {audience.id: (0, 0)}
        assert len(queries) == 2  # the lock and the (prepared) evaluation
        assert realtime_index_cached(workspace.id) is copy

        audience_update(
            audience=audience,
            data={"rules": {"version": 1, "root": {"profile": {
                "field": "country", "op": "eq", "value": "AR"}}}},
        )  # fmt: skip
        assert realtime_memberships_update(workspace=workspace, changes={customer.id: COUNTRY}) == {
            audience.id: (0, 1)
        }
        rebuilt = realtime_index_cached(workspace.id)
        assert rebuilt is not copy
        assert rebuilt.fingerprint != copy.fingerprint
        assert [a.id for a in rebuilt.touched(COUNTRY)] == [audience.id]


@pytest.mark.django_db
def test_keys_that_touch_no_audience_still_check_the_copy(workspace):
    """An empty answer from a stale copy would skip an audience created since."""
    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, country="MX")
        changes = {customer.id: COUNTRY}
        assert realtime_memberships_update(workspace=workspace, changes=changes) == {}
        with CaptureQueriesContext(connection) as queries:
            assert realtime_memberships_update(workspace=workspace, changes=changes) == {}
        assert len(queries) == 1  # the fingerprint alone, not the customers' rows
    audience = country_audience(workspace, "Mexico", "MX")
    with workspace_scope(workspace.id):
        assert realtime_memberships_update(workspace=workspace, changes={customer.id: COUNTRY}) == {
            audience.id: (1, 0)
        }


@pytest.mark.django_db
def test_copies_are_per_workspace(workspace, other_workspace):
    with workspace_scope(workspace.id):
        mine = CustomerFactory(workspace=workspace, country="MX")
    with workspace_scope(other_workspace.id):
        theirs = CustomerFactory(workspace=other_workspace, country="MX")
    here = country_audience(workspace, "Mexico", "MX")
    there = country_audience(other_workspace, "Mexico", "MX")
    with workspace_scope(workspace.id):
        assert realtime_memberships_update(workspace=workspace, changes={mine.id: COUNTRY}) == {
            here.id: (1, 0)
        }
    with workspace_scope(other_workspace.id):
        assert realtime_memberships_update(
            workspace=other_workspace, changes={theirs.id: COUNTRY}
        ) == {there.id: (1, 0)}
    assert [a.id for a in realtime_index_cached(workspace.id).audiences.values()] == [here.id]
    assert [a.id for a in realtime_index_cached(other_workspace.id).audiences.values()] == [
        there.id
    ]
