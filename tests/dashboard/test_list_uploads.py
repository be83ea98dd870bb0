"""Uploaded lists from CSV in the dashboard: the form, progress, the problems report, the recent
uploads on the audience page, and who may do what."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.html import escape

from audiences.models import Audience, ListUpload, Membership, MembershipChange
from audiences.services import audience_create, list_members_change
from audiences.tasks import process_list_upload
from masivo.tenancy.context import workspace_scope
from profiles.models import Customer
from tests.factories import CustomerFactory, ListUploadFactory

pytestmark = pytest.mark.django_db

EMAILS = "email\nANA@example.com\nbeto@example.com\nnobody@example.com\nnot-an-email\n"
MX = {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}}}


def url(workspace, audience, suffix: str = "") -> str:
    return f"/w/{workspace.id}/audiences/{audience.id}/{suffix}"


def csv_file(content: str | bytes, name: str = "vip.csv") -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/csv")


def make_list(workspace, name: str = "VIP") -> Audience:
    with workspace_scope(workspace.id):
        return audience_create(workspace=workspace, data={"name": name, "kind": "list"})


def make_upload(workspace, audience, **fields) -> ListUpload:
    with workspace_scope(workspace.id):
        return ListUploadFactory(workspace=workspace, audience=audience, **fields)


def uploads_of(workspace) -> list[tuple]:
    with workspace_scope(workspace.id):
        return list(
            ListUpload.objects.order_by("id").values_list(
                "audience__name", "filename", "identifier", "create_missing", "status"
            )
        )


def only_upload_id(workspace) -> int:
    with workspace_scope(workspace.id):
        [list_upload_id] = ListUpload.objects.values_list("id", flat=True)
    return list_upload_id


def run(workspace, list_upload_id: int) -> None:
    """What the worker does once the upload's transaction commits (Celery is not running)."""
    process_list_upload(workspace_id=workspace.id, upload_id=list_upload_id)


def members(workspace, audience) -> list[str]:
    with workspace_scope(workspace.id):
        return sorted(
            Membership.objects.filter(audience=audience).values_list("customer__email", flat=True)
        )


@pytest.fixture
def vip(workspace) -> Audience:
    """A list holding Beto; Ana, Beto and Carla are customers."""
    audience = make_list(workspace)
    with workspace_scope(workspace.id):
        for name in ("ana", "beto", "carla"):
            CustomerFactory(workspace=workspace, external_id=name, email=f"{name}@example.com")
        beto = Customer.objects.get(external_id="beto")
        list_members_change(audience=audience, add=[beto.id], remove=[], actor="test")
    return audience


def upload(client, workspace, audience, content=EMAILS, **fields):
    data = {"file": csv_file(content), "identifier": "email"} | fields
    return client.post(url(workspace, audience, "uploads/"), data)


def test_an_upload_is_stored_queued_and_shown(
    member_client, member, workspace, vip, woken, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(member_client, workspace, vip)

    with workspace_scope(workspace.id):
        [list_upload] = ListUpload.objects.all()
    assert response.status_code == 302
    assert response["Location"] == url(workspace, vip, f"uploads/{list_upload.id}/")
    assert (
        list_upload.audience_id, list_upload.filename, list_upload.identifier,
        list_upload.create_missing, list_upload.status, list_upload.size_bytes,
        list_upload.created_by,
    ) == (
        vip.id, "vip.csv", "email", False, "queued", len(EMAILS), f"dashboard:{member.user.email}",
    )  # fmt: skip
    task = {"workspace_id": workspace.id, "upload_id": list_upload.id}
    assert woken == [("audiences.process_list_upload", task)]
    content = member_client.get(response["Location"]).content.decode()
    progress_url = url(workspace, vip, f"uploads/{list_upload.id}/progress/")
    assert (
        f'hx-get="{progress_url}" hx-trigger="every 1s" hx-swap="outerHTML" data-status="queued"'
        in content
    )
    assert '<span class="progress-percent">0%</span>' in content
    assert '<span class="badge badge-muted">Queued</span>' in content
    assert "Waiting for a worker to pick the file up…" in content
    assert "matched by email</p>" in content
    assert members(workspace, vip) == ["beto@example.com"]


def test_after_the_task_members_are_added_and_the_counts_shown(member_client, workspace, vip):
    upload(member_client, workspace, vip)
    list_upload_id = only_upload_id(workspace)

    run(workspace, list_upload_id)
    response = member_client.get(url(workspace, vip, f"uploads/{list_upload_id}/progress/"))

    assert members(workspace, vip) == ["ana@example.com", "beto@example.com"]
    with workspace_scope(workspace.id):
        list_upload = ListUpload.objects.get(id=list_upload_id)
        assert Audience.objects.get(id=vip.id).size == 2
        ids = dict(Customer.objects.values_list("external_id", "id"))
        assert list(
            MembershipChange.objects.order_by("id").values_list(
                "kind", "customer_id", "source", "reason", "actor", "upload_id"
            )
        ) == [
            ("enter", ids["beto"], "list", "added", "test", None),
            ("enter", ids["ana"], "upload", "added", list_upload.created_by, list_upload_id),
        ]
    assert (
        list_upload.status, list_upload.rows_added, list_upload.rows_already,
        list_upload.rows_created, list_upload.rows_unmatched, list_upload.rows_invalid,
    ) == ("succeeded", 1, 1, 0, 1, 1)  # fmt: skip
    content = response.content.decode()
    assert content.startswith('<div id="list-upload-progress"')
    assert "hx-trigger" not in content
    assert 'data-status="succeeded"' in content
    assert '<span class="progress-percent">100%</span>' in content
    assert '<progress class="progress" max="100" value="100"' in content
    for label, value in [("Added", 1), ("Already members", 1), ("Customers created", 0)]:
        assert f'<dt class="stat-label">{label}</dt><dd class="stat-value">{value}</dd>' in content
    for label in ["Unmatched", "Invalid"]:
        assert f'<dt class="stat-label">{label}</dt><dd class="stat-value is-bad">1</dd>' in content
    problems_url = url(workspace, vip, f"uploads/{list_upload_id}/problems.csv")
    assert f'href="{problems_url}" download>Download the rows that added no one (2)</a>' in content


def test_the_problems_download_as_csv(viewer_client, member_client, workspace, vip):
    upload(member_client, workspace, vip)
    list_upload_id = only_upload_id(workspace)
    run(workspace, list_upload_id)

    response = viewer_client.get(url(workspace, vip, f"uploads/{list_upload_id}/problems.csv"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == (
        f'attachment; filename="list-upload-{list_upload_id}-problems.csv"'
    )
    assert b"".join(response.streaming_content).decode().splitlines() == [
        "row,value,reason",
        "4,nobody@example.com,no customer with this email",
        "5,not-an-email,invalid email: 'not-an-email' is not a valid email address",
    ]


def test_missing_customers_are_created_from_external_ids(member_client, workspace, vip):
    upload(
        member_client, workspace, vip, "external_id\nana\nnew-1\nnew-2\n",
        identifier="external_id", create_missing="on",
    )  # fmt: skip
    list_upload_id = only_upload_id(workspace)

    run(workspace, list_upload_id)
    content = member_client.get(url(workspace, vip, f"uploads/{list_upload_id}/")).content.decode()

    with workspace_scope(workspace.id):
        assert sorted(
            Membership.objects.filter(audience=vip).values_list("customer__external_id", flat=True)
        ) == ["ana", "beto", "new-1", "new-2"]
        assert Customer.objects.filter(external_id__startswith="new-").count() == 2
    assert uploads_of(workspace) == [("VIP", "vip.csv", "external_id", True, "succeeded")]
    assert "matched by external id, creating missing customers</p>" in content
    assert '<dt class="stat-label">Added</dt><dd class="stat-value">3</dd>' in content
    assert '<dt class="stat-label">Customers created</dt><dd class="stat-value">2</dd>' in content
    assert '<span class="muted">Every row matched a customer.</span>' in content
    assert "problems.csv" not in content


PHONES = "+5215512345678\n"


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"identifier": "email"}, "file", "Choose a CSV file to upload."),
        ({"file": csv_file(b""), "identifier": "email"}, "file", "The submitted file is empty."),
        ({"file": csv_file(b"\n  \n"), "identifier": "email"}, "file", "The file is empty"),
        ({"file": csv_file(b"\xff\xfe\x00a\x00b\x00c\x00d\x00e"), "identifier": "email"},
         "file", "The file is not UTF-8 text"),
        ({"file": csv_file(PHONES), "identifier": "phone", "create_missing": "on"},
         "create_missing", "Missing customers can be created from external ids or emails only"),
        ({"file": csv_file(PHONES), "identifier": "name"}, "identifier",
         "Select a valid choice. name is not one of the available choices."),
    ],
)  # fmt: skip
def test_a_bad_upload_is_explained_on_its_field_and_stores_nothing(
    member_client, workspace, vip, data, field, error
):
    response = member_client.post(url(workspace, vip, "uploads/"), data)

    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]
    assert f'<p class="field-error">{escape(error)}' in response.content.decode()
    assert uploads_of(workspace) == []
    assert members(workspace, vip) == ["beto@example.com"]


def test_a_rules_audience_takes_no_file(member_client, workspace):
    with workspace_scope(workspace.id):
        mexico = audience_create(workspace=workspace, data={"name": "Mexico", "rules": MX})

    page = member_client.get(url(workspace, mexico, "uploads/")).content.decode()
    response = upload(member_client, workspace, mexico, "ana\n", identifier="external_id")

    assert "Only uploaded lists take a file of members" in page
    assert 'type="file"' not in page
    assert response.status_code == 409
    assert response.context["form"].non_field_errors() == [
        "Only uploaded-list audiences take a file of members"
    ]
    assert (
        '<div class="alert alert-error" role="alert">'
        "Only uploaded-list audiences take a file of members</div>"
    ) in response.content.decode()
    assert uploads_of(workspace) == []


# -- the audience page and the recent uploads --------------------------------------------------


def test_the_list_page_links_to_the_upload_form_and_loads_recent_uploads(
    member_client, workspace, vip
):
    content = member_client.get(url(workspace, vip)).content.decode()

    assert "coming soon" not in content
    upload_url = url(workspace, vip, "uploads/")
    assert (
        f'<a class="btn btn-secondary btn-sm members-upload-link" href="{upload_url}">'
        "Upload a CSV</a>"
    ) in content
    recent_url = url(workspace, vip, "uploads/recent/")
    assert (
        f'<div id="list-uploads-recent" hx-get="{recent_url}" hx-trigger="load" '
        'hx-swap="outerHTML">'
    ) in content


def test_a_rules_audience_page_has_no_uploads(member_client, workspace):
    with workspace_scope(workspace.id):
        mexico = audience_create(workspace=workspace, data={"name": "Mexico", "rules": MX})

    content = member_client.get(url(workspace, mexico)).content.decode()

    assert "uploads/" not in content


def test_recent_uploads_are_this_lists_newest_first(
    viewer_client, workspace, other_workspace, vip, django_assert_num_queries
):
    for number in range(7):
        make_upload(workspace, vip, filename=f"file-{number}.csv", status="succeeded")
    make_upload(workspace, make_list(workspace, "Other list"), filename="other-list.csv")
    make_upload(other_workspace, make_list(other_workspace), filename="theirs.csv")

    # Session, user, workspace, membership, audience, uploads.
    with django_assert_num_queries(6):
        response = viewer_client.get(url(workspace, vip, "uploads/recent/"))
    full = viewer_client.get(url(workspace, vip, "uploads/"))

    assert [u.filename for u in response.context["uploads"]] == [
        "file-6.csv", "file-5.csv", "file-4.csv", "file-3.csv", "file-2.csv",
    ]  # fmt: skip
    assert [u.filename for u in full.context["uploads"]] == [
        f"file-{n}.csv" for n in range(6, -1, -1)
    ]
    content = response.content.decode()
    assert content.startswith('<div id="list-uploads-recent">')
    detail_url = url(workspace, vip, f"uploads/{response.context['uploads'][0].id}/")
    assert f'<a class="strong" href="{detail_url}">file-6.csv</a>' in content
    assert '<span class="badge badge-success">Succeeded</span>' in content
    assert "other-list.csv" not in full.content.decode()


def test_a_list_without_uploads_says_so(viewer_client, workspace, vip):
    response = viewer_client.get(url(workspace, vip, "uploads/recent/"))

    assert response.content.decode().split() == [
        '<div', 'id="list-uploads-recent">', '<div', 'class="empty-inline">No', 'files',
        'uploaded', 'to', 'this', 'list', 'yet.</div>', '</div>',
    ]  # fmt: skip


# -- who may do what ---------------------------------------------------------------------------


def test_viewers_see_uploads_but_no_controls(viewer_client, workspace, vip):
    make_upload(workspace, vip, filename="spring.csv")

    audience_page = viewer_client.get(url(workspace, vip)).content.decode()
    uploads_page = viewer_client.get(url(workspace, vip, "uploads/")).content.decode()

    assert "Upload a CSV</a>" not in audience_page
    assert 'type="file"' not in uploads_page
    assert "Upload and add" not in uploads_page
    assert "Marketers, admins and owners upload files." in uploads_page
    assert "spring.csv" in uploads_page


def test_a_viewer_upload_is_refused_and_changes_nothing(viewer_client, workspace, vip):
    response = upload(viewer_client, workspace, vip)

    assert response.status_code == 403
    assert uploads_of(workspace) == []
    assert members(workspace, vip) == ["beto@example.com"]


@pytest.mark.parametrize("suffix", ["", "progress/", "problems.csv"])
def test_another_workspaces_upload_is_a_404(member_client, workspace, other_workspace, vip, suffix):
    theirs = make_upload(other_workspace, make_list(other_workspace))

    mine = member_client.get(url(workspace, vip, f"uploads/{theirs.id}/{suffix}"))
    under_theirs = member_client.get(
        f"/w/{workspace.id}/audiences/{theirs.audience_id}/uploads/{theirs.id}/{suffix}"
    )

    assert (mine.status_code, under_theirs.status_code) == (404, 404)


@pytest.mark.parametrize("suffix", ["", "progress/", "problems.csv"])
def test_another_lists_upload_is_a_404(member_client, workspace, vip, suffix):
    other = make_upload(workspace, make_list(workspace, "Other list"))

    response = member_client.get(url(workspace, vip, f"uploads/{other.id}/{suffix}"))

    assert response.status_code == 404


@pytest.mark.parametrize("suffix", ["uploads/", "uploads/recent/"])
def test_another_workspaces_audience_is_a_404(member_client, workspace, other_workspace, suffix):
    theirs = make_list(other_workspace)

    response = member_client.get(f"/w/{workspace.id}/audiences/{theirs.id}/{suffix}")

    assert response.status_code == 404


def test_an_upload_to_another_workspaces_audience_is_a_404_and_stores_nothing(
    member_client, workspace, other_workspace
):
    theirs = make_list(other_workspace)

    response = member_client.post(
        f"/w/{workspace.id}/audiences/{theirs.id}/uploads/",
        {"file": csv_file(EMAILS), "identifier": "email"},
    )

    assert response.status_code == 404
    assert uploads_of(other_workspace) == []


@pytest.mark.parametrize(
    "suffix",
    ["uploads/", "uploads/recent/", "uploads/{id}/", "uploads/{id}/progress/",
     "uploads/{id}/problems.csv"],
)  # fmt: skip
def test_outsiders_get_a_404(outsider_client, workspace, vip, suffix):
    list_upload = make_upload(workspace, vip)

    response = outsider_client.get(url(workspace, vip, suffix.format(id=list_upload.id)))

    assert response.status_code == 404


def test_an_outsider_upload_is_a_404_and_changes_nothing(outsider_client, workspace, vip):
    response = upload(outsider_client, workspace, vip)

    assert response.status_code == 404
    assert uploads_of(workspace) == []
    assert members(workspace, vip) == ["beto@example.com"]
