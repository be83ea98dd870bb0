"""Customer CSV imports through the API, processed by the task as a worker would."""

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.utils import timezone

from masivo.jobs import jobs_to_wake
from masivo.tenancy.context import workspace_scope
from profiles import imports
from profiles.imports import IMPORT_TASK, customer_imports_resume_stalled
from profiles.models import ConsentChange, Customer, CustomerImport
from profiles.tasks import import_customers
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

CSV = (
    "external_id,Email,first_name,country,plan,vip,email_opt_in\n"
    "u1,Ana@Example.com,Ana,mx,gold,yes,granted\n"
    "u2,bad-email,Beto,MX,silver,no,denied\n"
    "u3,carla@example.com,Carla,ZZ,free,,\n"
    "u4,dani@example.com,Dani,AR,free,,maybe\n"
    ",eve@example.com,Eve,MX,free,,\n"
    "u1,ana@example.com,Ana María,MX,platinum,,\n"
)
MAPPING = {
    "external_id": "external_id",
    "Email": "email",
    "first_name": "first_name",
    "country": "country",
    "plan": "traits.plan",
    "vip": "tags.vip",
    "email_opt_in": "consent.email_marketing",
}


def upload(api, content: str | bytes, **fields):
    data = content.encode() if isinstance(content, str) else content
    body = {"file": SimpleUploadedFile("customers.csv", data, content_type="text/csv")}
    body |= {key: json.dumps(value) if key == "mapping" else value for key, value in fields.items()}
    return api.post("/api/v1/customer-imports", body)


def run(workspace, import_id):
    import_customers(workspace_id=workspace.id, import_id=import_id)


def test_import_upserts_rows_and_reports_bad_ones(api, workspace):
    response = upload(api, CSV, mapping=MAPPING)
    assert response.status_code == 202
    created = response.json()
    assert (created["status"], created["match_by"], created["size_bytes"]) == (
        "queued",
        "external_id",
        len(CSV.encode()),
    )
    run(workspace, created["id"])

    status = api.get(f"/api/v1/customer-imports/{created['id']}").json()
    assert (status["status"], status["progress"], status["next_row"]) == ("succeeded", 1.0, 6)
    assert (status["rows_created"], status["rows_updated"], status["rows_failed"]) == (1, 0, 4)
    with workspace_scope(workspace.id):
        ana = Customer.objects.get(external_id="u1")
        assert Customer.objects.count() == 1
        assert list(ConsentChange.objects.values_list("purpose", "status")) == [
            ("email_marketing", "granted")
        ]
    assert (ana.email, ana.first_name, ana.country) == ("ana@example.com", "Ana María", "MX")
    assert ana.traits == {"plan": "platinum"}
    assert ana.tags == {"vip": "yes"}
    assert ana.consent["email_marketing"]["status"] == "granted"

    report = api.get(f"/api/v1/customer-imports/{created['id']}/errors")
    assert report["Content-Type"] == "text/csv"
    assert (
        b"".join(report.streaming_content).decode().splitlines()
        == [
            "row,column,error",
            "2,Email,'bad-email' is not a valid email address",
            "3,country,'ZZ' is not an ISO 3166-1 alpha-2 country code",
            '4,email_opt_in,"use granted/denied (or yes/no, true/false, 1/0)"',
            "5,external_id,no external_id to match on",
            # row 6 updates u1 (the later row for the same customer wins); row 1 is folded into it
        ][:5]
    )


def test_reimporting_the_same_file_changes_nothing(api, workspace):
    content = "external_id,email,plan\nu1,a@example.com,gold\nu2,b@example.com,silver\n"
    first = upload(api, content).json()
    run(workspace, first["id"])
    with workspace_scope(workspace.id):
        before = list(Customer.objects.order_by("id").values("external_id", "email", "traits"))
    second = upload(api, content).json()
    run(workspace, second["id"])
    status = api.get(f"/api/v1/customer-imports/{second['id']}").json()
    assert (status["rows_created"], status["rows_updated"], status["rows_failed"]) == (0, 2, 0)
    with workspace_scope(workspace.id):
        after = list(Customer.objects.order_by("id").values("external_id", "email", "traits"))
    assert (
        after
        == before
        == [
            {"external_id": "u1", "email": "a@example.com", "traits": {"plan": "gold"}},
            {"external_id": "u2", "email": "b@example.com", "traits": {"plan": "silver"}},
        ]
    )


def test_match_by_email_updates_existing_customers(api, workspace):
    with workspace_scope(workspace.id):
        existing = CustomerFactory(
            workspace=workspace, email="ana@example.com", external_id="crm-1"
        )
    job = upload(api, "email,tier\nANA@example.com,gold\nnew@example.com,free\n").json()
    assert job["match_by"] == "email"
    run(workspace, job["id"])
    with workspace_scope(workspace.id):
        assert dict(Customer.objects.values_list("email", "tier")) == {
            "ana@example.com": "gold",
            "new@example.com": "free",
        }
        assert Customer.objects.get(email="ana@example.com").id == existing.id


def test_an_email_owned_by_another_customer_fails_that_row_only(api, workspace):
    with workspace_scope(workspace.id):
        CustomerFactory(workspace=workspace, email="taken@example.com", external_id="other")
    job = upload(api, "external_id,email\nu1,taken@example.com\nu2,free@example.com\n").json()
    run(workspace, job["id"])
    status = api.get(f"/api/v1/customer-imports/{job['id']}").json()
    assert (status["rows_created"], status["rows_failed"]) == (1, 1)


@pytest.mark.parametrize(
    ("content", "fields", "errors"),
    [
        (b"", {}, {"file": ["the file is empty or has no header row"]}),
        (b"\xff\xfeh\x00i\x00", {}, {"file": ["the file is not UTF-8 text"]}),
        (b"a,a\n1,2\n", {}, {"file": ["the header row repeats a column name"]}),
        (b"name,plan\nAna,x\n", {}, {"mapping": ["no column is mapped to external_id or email"]}),
        (b"external_id\nu1\n", {"mapping": {"nope": "email"}},
         {"mapping": ["the file has no column 'nope'"]}),
        (b"external_id\nu1\n", {"mapping": {"external_id": "salary"}},
         {"mapping.external_id": ["'salary' is not a target: use a profile field, traits.<key>, "
                                  "tags.<key>, consent.<purpose> or ignore"]}),
        (b"external_id\nu1\n", {"match_by": "phone"},
         {"match_by": ["match_by is external_id or email"]}),
    ],
)  # fmt: skip
def test_bad_uploads_are_refused_with_the_reason(api, workspace, content, fields, errors):
    response = upload(api, content, **fields)
    assert response.status_code == 400
    assert response.json()["errors"] == errors
    with workspace_scope(workspace.id):
        assert CustomerImport.objects.count() == 0


def test_missing_file_is_a_400(api):
    response = api.post("/api/v1/customer-imports", {})
    assert response.status_code == 400
    assert response.json()["errors"] == {"file": ["attach the CSV as `file`"]}


def test_a_file_that_turns_out_not_to_be_utf8_fails_with_the_row(api, workspace):
    content = b"external_id,first_name\nu1,Ana\nu2,Jos\xe9\n"
    job = upload(api, content).json()
    run(workspace, job["id"])
    status = api.get(f"/api/v1/customer-imports/{job['id']}").json()
    assert status["status"] == "failed"
    assert status["error"] == "stopped after row 0: the file is not UTF-8 text"


def test_an_import_resumes_from_its_checkpoint(api, workspace):
    rows = "".join(f"u{n},user{n}@example.com\n" for n in range(1, 2501))
    job = upload(api, "external_id,email\n" + rows).json()
    with workspace_scope(workspace.id):
        CustomerImport.objects.filter(id=job["id"]).update(next_row=2000)
    run(workspace, job["id"])
    status = api.get(f"/api/v1/customer-imports/{job['id']}").json()
    assert (status["status"], status["rows_created"], status["next_row"]) == (
        "succeeded",
        500,
        2500,
    )
    with workspace_scope(workspace.id):
        assert Customer.objects.count() == 500
        assert not Customer.objects.filter(external_id="u2000").exists()
        assert Customer.objects.filter(external_id="u2001").exists()


def test_a_finished_import_is_not_run_twice(api, workspace):
    job = upload(api, "external_id\nu1\n").json()
    run(workspace, job["id"])
    run(workspace, job["id"])
    status = api.get(f"/api/v1/customer-imports/{job['id']}").json()
    assert (status["rows_created"], status["rows_updated"]) == (1, 0)


def test_matching_by_email_an_external_id_owned_by_another_fails_that_row_only(api, workspace):
    with workspace_scope(workspace.id):
        CustomerFactory(workspace=workspace, email="other@example.com", external_id="taken")
    content = "email,external_id\nana@example.com,taken\nbeto@example.com,b1\n"
    job = upload(api, content, match_by="email").json()
    run(workspace, job["id"])
    status = api.get(f"/api/v1/customer-imports/{job['id']}").json()
    assert (status["status"], status["rows_created"], status["rows_failed"]) == ("succeeded", 1, 1)
    report = api.get(f"/api/v1/customer-imports/{job['id']}/errors")
    assert b"".join(report.streaming_content).decode().splitlines()[1] == (
        "1,external_id,taken belongs to another customer"
    )


def test_a_constraint_error_stops_the_import_with_its_reason(api, workspace, monkeypatch):
    from django.db import IntegrityError

    from profiles import imports

    def conflict(*args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    job = upload(api, "external_id\nu1\n").json()
    monkeypatch.setattr(imports, "_write_customers", conflict)
    run(workspace, job["id"])
    status = api.get(f"/api/v1/customer-imports/{job['id']}").json()
    assert status["status"] == "failed"
    assert status["error"] == (
        "stopped after row 1: a row conflicts with another customer "
        "(duplicate key value violates unique constraint)"
    )


def test_an_import_whose_worker_went_silent_is_woken_and_resumed(api, workspace, monkeypatch):
    woken = []
    monkeypatch.setattr(imports, "task_wake", lambda name, **kwargs: woken.append((name, kwargs)))
    silent = upload(api, "external_id\nu1\nu2\n").json()
    fresh = upload(api, "external_id\nu3\n").json()
    long_ago = timezone.now() - timedelta(hours=1)
    with workspace_scope(workspace.id):
        CustomerImport.objects.filter(id=silent["id"]).update(
            status="running", attempts=1, created_at=long_ago, started_at=long_ago,
            heartbeat_at=long_ago, next_row=1,
        )  # fmt: skip

    assert customer_imports_resume_stalled() == 1
    assert woken == [(IMPORT_TASK, {"workspace_id": workspace.id, "import_id": silent["id"]})]
    run(workspace, silent["id"])

    status = api.get(f"/api/v1/customer-imports/{silent['id']}").json()
    assert (status["status"], status["next_row"], status["rows_created"]) == ("succeeded", 2, 1)
    assert api.get(f"/api/v1/customer-imports/{fresh['id']}").json()["status"] == "queued"
    with workspace_scope(workspace.id):
        assert CustomerImport.objects.get(id=silent["id"]).attempts == 2
        assert list(Customer.objects.values_list("external_id", flat=True)) == ["u2"]


def test_a_transient_error_queues_the_import_again_with_backoff(api, workspace, monkeypatch):
    def lost_connection(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    job = upload(api, "external_id\nu1\n").json()
    monkeypatch.setattr(imports, "_write_customers", lost_connection)
    before = timezone.now()
    run(workspace, job["id"])

    with workspace_scope(workspace.id):
        stored = CustomerImport.objects.get(id=job["id"])
    assert (stored.status, stored.attempts, stored.next_row, stored.error) == (
        "queued", 1, 0, "OperationalError: server closed the connection unexpectedly"
    )  # fmt: skip
    backoff = timedelta(seconds=10)  # Job.FIRST_BACKOFF
    assert before + backoff <= stored.retry_at <= timezone.now() + backoff
    assert jobs_to_wake(CustomerImport, reason="test", now=stored.retry_at) == [
        (workspace.id, job["id"])
    ]
