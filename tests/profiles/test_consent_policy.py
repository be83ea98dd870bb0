"""THE consent policy: the per-customer check, `may_contact` and the SQL fragment (run on real
Postgres) give the table's answer for every stored status, regime and purpose."""

import pytest
from django.db import connection

from masivo.tenancy.context import workspace_scope
from profiles.consent import (
    CONSENT_POLICY,
    NOT_RECORDED,
    consent_allows,
    consent_allows_sql,
    consent_opt_out,
    may_contact,
)
from profiles.models import ConsentPurpose, ProfileSettings
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

AT = "2026-01-01T00:00:00+00:00"

# What may be stored for the purpose (None: no record), and the table row it reads as.
STORED = [
    pytest.param({"status": "granted", "at": AT, "source": "form"}, "granted", id="granted"),
    pytest.param({"status": "denied", "at": AT, "source": "form"}, "denied", id="denied"),
    pytest.param(None, NOT_RECORDED, id="not-recorded"),
    pytest.param({"status": None}, NOT_RECORDED, id="null-status"),
    pytest.param({"at": AT}, NOT_RECORDED, id="record-without-status"),
    pytest.param("granted", NOT_RECORDED, id="record-not-an-object"),
    pytest.param({"status": "revoked"}, "denied", id="unknown-status-fails-closed"),
]
REGIMES = [pytest.param("opt_in", id="opt-in"), pytest.param("opt_out", id="opt-out")]


def binder(params: dict):
    def bind(value) -> str:
        name = f"v{len(params)}"
        params[name] = value
        return f"%({name})s"

    return bind


def allowed_by_sql(customer_id: int, purpose: str, *, opt_out: bool) -> bool:
    params = {"customer": customer_id}
    bind = binder(params)
    expression = consent_allows_sql("c.consent", bind(purpose), opt_out=opt_out, bind=bind)
    query = f"SELECT {expression} FROM profiles_customer c WHERE c.id = %(customer)s"  # noqa: S608 (every value is bound)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()[0]


def test_the_policy_table():
    assert dict(CONSENT_POLICY) == {
        ("granted", False): True,
        ("granted", True): True,
        ("denied", False): False,
        ("denied", True): False,
        (None, False): False,
        (None, True): True,
    }


@pytest.mark.parametrize("others", ["granted", "denied"], ids=["others-granted", "others-denied"])
@pytest.mark.parametrize("purpose", ConsentPurpose.values)
@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize(("stored", "policy_status"), STORED)
def test_every_form_gives_the_tables_answer(
    workspace, stored, policy_status, regime, purpose, others
):
    consent = {other: {"status": others} for other in ConsentPurpose.values if other != purpose}
    consent |= {purpose: stored} if stored is not None else {}
    settings = ProfileSettings(consent_regime=regime)
    opt_out = consent_opt_out(settings)
    expected = CONSENT_POLICY[policy_status, opt_out]

    with workspace_scope(workspace.id):
        customer = CustomerFactory(workspace=workspace, consent=consent)
        by_sql = allowed_by_sql(customer.id, purpose, opt_out=opt_out)

    assert opt_out is (regime == "opt_out")
    assert consent_allows(consent, purpose, opt_out=opt_out) is expected
    assert may_contact(customer, purpose, settings=settings) is expected
    assert by_sql is expected


@pytest.mark.parametrize("opt_out", [False, True], ids=["opt-in", "opt-out"])
def test_the_fragment_binds_every_value(opt_out):
    params = {}

    expression = consent_allows_sql(
        "c.consent", "%(purpose)s", opt_out=opt_out, bind=binder(params)
    )

    status = "(c.consent -> %(purpose)s ->> 'status')"
    assert expression == (
        f"(CASE WHEN {status} = %(v0)s THEN %(v1)s "
        f"WHEN {status} IS NULL THEN %(v2)s ELSE %(v3)s END)"
    )
    assert params == {"v0": "granted", "v1": True, "v2": opt_out, "v3": False}
