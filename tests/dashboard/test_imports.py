"""Customer CSV imports in the dashboard: upload, progress, the error report, refusals."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, CustomerImport
from profiles.tasks import import_customers
from tests.factories import CustomerImportFactory

pytestmark = pytest.mark.django_db

CSV = (
    "external_id,email,first_name,country,plan\n"
    "u1,ana@example.com,Ana,mx,gold\n"
    "u2,bad-email,Beto,MX,silver\n"
    "u3,carla@example.com,Carla,ZZ,free\n"
)


def imports_url(workspace, suffix: str = "") -> str:
    return f"/w/{workspace.id}/customers/import/{suffix}"


def csv_file(content: str | bytes, name: str = "customers.csv") -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/csv")


def imports_of(workspace) -> list[CustomerImport]:
    with workspace_scope(workspace.id):
        return list(CustomerImport.objects.order_by("id"))


def run(workspace, customer_import) -> None:
    """What the worker does once the upload's transaction commits (Celery is not running)."""
    import_customers(workspace_id=workspace.id, import_id=customer_import.id)


def make_import(workspace, **fields) -> CustomerImport:
    with workspace_scope(workspace.id):
        return CustomerImportFactory(workspace=workspace, **fields)


def test_an_upload_is_stored_queued_and_shown(member_client, member, workspace):
    response = member_client.post(imports_url(workspace), {"file": csv_file(CSV)})

    [customer_import] = imports_of(workspace)
    assert response.status_code == 302
    assert response["Location"] == imports_url(workspace, f"{customer_import.id}/")
    assert (
        customer_import.filename, customer_import.status, customer_import.match_by,
        customer_import.size_bytes, customer_import.created_by,
    ) == (
        "customers.csv", "queued", "external_id", len(CSV), f"dashboard:{member.user.email}",
    )  # fmt: skip
    assert customer_import.mapping == {
        "external_id": "external_id",
        "email": "email",
        "first_name": "first_name",
        "country": "country",
        "plan": "traits.plan",
    }
    content = member_client.get(response["Location"]).content.decode()
    progress_url = imports_url(workspace, f"{customer_import.id}/progress/")
    assert (
        f'hx-get="{progress_url}" hx-trigger="every 1s" hx-swap="outerHTML" data-status="queued"'
        in content
    )
    assert '<span class="progress-percent">0%</span>' in content
    assert "<tr><td><code>plan</code></td><td><code>traits.plan</code></td></tr>" in content


def test_after_the_task_the_progress_is_complete_and_polling_stops(member_client, workspace):
    member_client.post(imports_url(workspace), {"file": csv_file(CSV)})
    [customer_import] = imports_of(workspace)

    run(workspace, customer_import)
    response = member_client.get(imports_url(workspace, f"{customer_import.id}/progress/"))

    content = response.content.decode()
    assert content.startswith('<div id="import-progress"')
    assert "hx-trigger" not in content
    assert 'data-status="succeeded"' in content
    assert '<span class="progress-percent">100%</span>' in content
    assert '<progress class="progress" max="100" value="100"' in content
    for label, value in [("Rows read", 3), ("Created", 1), ("Updated", 0)]:
        assert f'<dt class="stat-label">{label}</dt><dd class="stat-value">{value}</dd>' in content
    assert '<dt class="stat-label">Failed</dt><dd class="stat-value is-bad">2</dd>' in content
    errors_url = imports_url(workspace, f"{customer_import.id}/errors.csv")
    assert f'href="{errors_url}" download>Download error report (2 rows)</a>' in content
    with workspace_scope(workspace.id):
        assert list(Customer.objects.values_list("external_id", "country")) == [("u1", "MX")]


def test_the_error_report_downloads_as_csv(member_client, workspace):
    member_client.post(imports_url(workspace), {"file": csv_file(CSV)})
    [customer_import] = imports_of(workspace)
    run(workspace, customer_import)

    response = member_client.get(imports_url(workspace, f"{customer_import.id}/errors.csv"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == (
        f'attachment; filename="import-{customer_import.id}-errors.csv"'
    )
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "row,column,error",
        "2,email,'bad-email' is not a valid email address",
        "3,country,'ZZ' is not an ISO 3166-1 alpha-2 country code",
    ]


def test_a_mapping_and_match_by_are_passed_to_the_service(member_client, workspace):
    mapping = '{"email": "email", "plan": "tags.plan", "external_id": "ignore"}'

    member_client.post(
        imports_url(workspace),
        {"file": csv_file(CSV), "mapping": mapping, "match_by": "email"},
    )

    [customer_import] = imports_of(workspace)
    assert customer_import.match_by == "email"
    # Columns the mapping leaves out map to the field they are named like.
    assert customer_import.mapping == {
        "external_id": "ignore",
        "email": "email",
        "first_name": "first_name",
        "country": "country",
        "plan": "tags.plan",
    }


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({}, "file", "Choose a CSV file to upload."),
        ({"file": csv_file(b"")}, "file", "The submitted file is empty."),
        ({"file": csv_file(b"\xff\xfe\x00a,b\n")}, "file", "The file is not UTF-8 text"),
        ({"file": csv_file(",\n1\n")}, "file", "The file is empty or has no header row"),
        (
            {"file": csv_file("name,plan\nAna,gold\n")},
            "mapping",
            "No column is mapped to external_id or email",
        ),
        (
            {"file": csv_file(CSV), "mapping": "{not json"},
            "mapping",
            "The mapping must be JSON, like {&quot;Email&quot;: &quot;email&quot;}.",
        ),
        (
            {"file": csv_file(CSV), "mapping": '{"Mail": "email"}'},
            "mapping",
            "The file has no column &#x27;Mail&#x27;",
        ),
        (
            {"file": csv_file(CSV), "mapping": '{"email": "emails"}'},
            "mapping",
            "&#x27;emails&#x27; is not a target",
        ),
        (
            {"file": csv_file(CSV), "mapping": '["email"]'},
            "mapping",
            "Must be an object of CSV column → target",
        ),
        (
            {"file": csv_file("external_id,plan\nu1,gold\n"), "match_by": "email"},
            "mapping",
            "No column is mapped to email",
        ),
        ({"file": csv_file(CSV), "match_by": "phone"}, "match_by", "Select a valid choice."),
    ],
)
def test_a_bad_upload_is_explained_on_its_field_and_stores_nothing(
    member_client, workspace, data, field, error
):
    response = member_client.post(imports_url(workspace), data)

    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == [field]
    content = response.content.decode()
    assert f'<p class="field-error">{error}' in content
    assert imports_of(workspace) == []


def test_the_list_shows_recent_imports_newest_first(viewer_client, workspace, other_workspace):
    make_import(workspace, filename="first.csv", status="succeeded", rows_created=7)
    make_import(workspace, filename="second.csv", status="running", rows_failed=2)
    make_import(other_workspace, filename="theirs.csv")

    response = viewer_client.get(imports_url(workspace))

    assert [i.filename for i in response.context["imports"]] == ["second.csv", "first.csv"]
    content = response.content.decode()
    assert '<span class="badge badge-info">Running</span>' in content
    assert "theirs.csv" not in content


def test_viewers_see_imports_but_no_upload_form(viewer_client, workspace):
    content = viewer_client.get(imports_url(workspace)).content.decode()

    assert 'type="file"' not in content
    assert "Upload and import" not in content
    assert "Marketers, admins and owners upload files." in content


def test_a_viewer_upload_is_refused_and_stores_nothing(viewer_client, workspace):
    response = viewer_client.post(imports_url(workspace), {"file": csv_file(CSV)})

    assert response.status_code == 403
    assert imports_of(workspace) == []


@pytest.mark.parametrize("suffix", ["", "progress/", "errors.csv"])
def test_another_workspaces_import_is_a_404(member_client, workspace, other_workspace, suffix):
    theirs = make_import(other_workspace)

    response = member_client.get(imports_url(workspace, f"{theirs.id}/{suffix}"))

    assert response.status_code == 404


@pytest.mark.parametrize("suffix", ["", "{id}/", "{id}/progress/", "{id}/errors.csv"])
def test_outsiders_get_a_404(outsider_client, workspace, suffix):
    customer_import = make_import(workspace)

    url = imports_url(workspace, suffix.format(id=customer_import.id))
    assert outsider_client.get(url).status_code == 404


def test_an_outsider_upload_is_a_404_and_stores_nothing(outsider_client, workspace):
    response = outsider_client.post(imports_url(workspace), {"file": csv_file(CSV)})

    assert response.status_code == 404
    assert imports_of(workspace) == []
