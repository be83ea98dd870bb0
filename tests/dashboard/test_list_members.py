"""Uploaded lists: every row of a file is counted once (repeats included), and members are
added by hand by customer id, external id or email."""

import pytest
from django.utils.html import escape

from audiences.models import ListUpload, MembershipChange
from masivo.tenancy.context import workspace_scope
from tests.dashboard.test_list_uploads import csv_file, make_list, members, only_upload_id, run, url
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def known(workspace) -> dict:
    with workspace_scope(workspace.id):
        return {
            name: CustomerFactory(
                workspace=workspace, external_id=name, email=f"{name}@example.com"
            )
            for name in ("ana", "beto", "carla")
        }


def counts(workspace) -> tuple:
    with workspace_scope(workspace.id):
        upload = ListUpload.objects.get()
    return (
        upload.rows_added, upload.rows_already, upload.rows_created, upload.rows_unmatched,
        upload.rows_invalid,
    )  # fmt: skip


def test_a_file_that_repeats_values_counts_every_row(member_client, workspace, known):
    audience = make_list(workspace)
    # 9 rows: ana three times, beto twice, nobody twice, an id too long (invalid) twice.
    too_long = "x" * 300
    content = f"external_id\nana\nbeto\nana\nnobody\n ana\nnobody\nbeto\n{too_long}\n{too_long}\n"

    member_client.post(
        url(workspace, audience, "uploads/"),
        {"file": csv_file(content), "identifier": "external_id"},
    )
    run(workspace, only_upload_id(workspace))

    added, already, created, unmatched, invalid = counts(workspace)
    assert (added, already, created, unmatched, invalid) == (2, 3, 0, 2, 2)
    assert added + already + unmatched + invalid == 9
    assert members(workspace, audience) == ["ana@example.com", "beto@example.com"]


def test_repeats_across_batches_count_as_already(member_client, workspace, known, monkeypatch):
    monkeypatch.setattr("audiences.lists.BATCH", 2)
    audience = make_list(workspace)

    member_client.post(
        url(workspace, audience, "uploads/"),
        {"file": csv_file("ana\nbeto\nana\nana\nbeto\n"), "identifier": "external_id"},
    )
    run(workspace, only_upload_id(workspace))

    assert counts(workspace) == (2, 3, 0, 0, 0)


@pytest.mark.parametrize(
    ("identifier", "values"),
    [
        ("external_id", "ana, beto\nana"),
        ("email", "ANA@example.com beto@example.com"),
    ],
)
def test_add_to_the_list_by_external_id_or_email(
    member_client, workspace, known, identifier, values
):
    audience = make_list(workspace)

    response = member_client.post(
        url(workspace, audience, "members/"),
        {"identifier": identifier, "customer_ids": values, "action": "add"},
        follow=True,
    )

    assert members(workspace, audience) == ["ana@example.com", "beto@example.com"]
    assert "Added 2 customers." in response.content.decode()


def test_remove_from_the_list_by_email(member_client, workspace, known):
    audience = make_list(workspace)
    ids = f"{known['ana'].id} {known['beto'].id}"
    member_client.post(url(workspace, audience, "members/"), {"customer_ids": ids, "action": "add"})

    member_client.post(
        url(workspace, audience, "members/"),
        {"identifier": "email", "customer_ids": "beto@example.com", "action": "remove"},
    )

    assert members(workspace, audience) == ["ana@example.com"]


@pytest.mark.parametrize(
    ("identifier", "values", "error"),
    [
        ("external_id", "ana, nobody", "No customer has the external id “nobody”."),
        ("email", "ana@example.com x@theirs.io", "No customer has the email “x@theirs.io”."),
        ("email", " , ", "Give at least one email."),
        ("phone", "ana", "Select a valid choice. phone is not one of the available choices."),
    ],
)  # fmt: skip
def test_unknown_values_are_refused_and_change_nothing(
    member_client, workspace, other_workspace, known, identifier, values, error
):
    with workspace_scope(other_workspace.id):
        CustomerFactory(workspace=other_workspace, external_id="theirs", email="x@theirs.io")
    audience = make_list(workspace)

    response = member_client.post(
        url(workspace, audience, "members/"),
        {"identifier": identifier, "customer_ids": values, "action": "add"},
    )

    assert response.status_code == 400
    assert escape(error) in response.content.decode()
    assert members(workspace, audience) == []
    with workspace_scope(workspace.id):
        assert MembershipChange.objects.count() == 0
