"""The profile page's actions: edit fields, tags and traits; delete, erase, export; and the
header without a phone."""

import json

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, ErasureTombstone, Event
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def profile_url(workspace, customer, suffix: str = "") -> str:
    return f"/w/{workspace.id}/customers/{customer.id}/{suffix}"


def make_customer(workspace, **fields) -> Customer:
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, **fields)


def stored(workspace, customer) -> dict | None:
    with workspace_scope(workspace.id):
        row = Customer.objects.filter(id=customer.id).first()
        return row and model_to_dict(row, exclude=["workspace"])


@pytest.fixture
def ana(workspace) -> Customer:
    return make_customer(
        workspace, external_id="u-1", email="ana@example.com", phone=None, first_name="Ana",
        last_name="López", country="MX", traits={"plan": "pro"}, tags={"vip": True, "b2b": "yes"},
    )  # fmt: skip


def form_data(customer: Customer, **changes) -> dict:
    data = {
        "external_id": customer.external_id or "", "email": customer.email or "",
        "phone": customer.phone or "", "first_name": customer.first_name,
        "last_name": customer.last_name, "gender": customer.gender,
        "birth_date": customer.birth_date.isoformat() if customer.birth_date else "",
        "country": customer.country, "city": customer.city, "timezone": customer.timezone,
        "locale": customer.locale, "tier": customer.tier, "status": customer.status,
        "tags": json.dumps(customer.tags), "traits": json.dumps(customer.traits),
    }  # fmt: skip
    return data | changes


@pytest.mark.parametrize(
    ("email", "phone", "lead"),
    [
        ("ana@example.com", None, '<p class="lead">ana@example.com</p>'),
        (None, "+525512345678", '<p class="lead">+525512345678</p>'),
        ("ana@example.com", "+525512345678", '<p class="lead">ana@example.com · +525512345678</p>'),
        (None, None, '<p class="lead">No email or phone</p>'),
    ],
)
def test_the_header_never_shows_none(viewer_client, workspace, email, phone, lead):
    customer = make_customer(workspace, external_id="x", email=email, phone=phone)

    content = viewer_client.get(profile_url(workspace, customer)).content.decode()

    assert lead in content
    assert "None" not in content


def test_a_marketer_edits_fields_tags_and_traits(member_client, workspace, ana):
    data = form_data(
        ana, first_name="Ana María", city="Puebla", phone="+525512345678",
        tags=json.dumps({"vip": True, "tier": 2}), traits=json.dumps({"plan": "max", "pets": 1}),
    )  # fmt: skip

    response = member_client.post(profile_url(workspace, ana, "edit/"), data)

    assert response.status_code == 302
    assert response["Location"] == profile_url(workspace, ana)
    row = stored(workspace, ana)
    assert (row["first_name"], row["city"], row["phone"]) == (
        "Ana María",
        "Puebla",
        "+525512345678",
    )
    assert (row["last_name"], row["email"], row["country"]) == ("López", "ana@example.com", "MX")
    assert row["tags"] == {"vip": True, "tier": 2}
    assert row["traits"] == {"plan": "max", "pets": 1}


def test_the_edit_form_shows_the_profile(member_client, workspace, ana):
    response = member_client.get(profile_url(workspace, ana, "edit/"))

    assert response.status_code == 200
    form = response.context["form"]
    assert form["first_name"].value() == "Ana"
    assert json.loads(form["tags"].value()) == {"vip": True, "b2b": "yes"}


def test_an_unchanged_form_writes_nothing(member_client, workspace, ana):
    before = stored(workspace, ana)

    response = member_client.post(profile_url(workspace, ana, "edit/"), form_data(ana), follow=True)

    assert [str(message) for message in response.context["messages"]] == ["Nothing changed."]
    assert stored(workspace, ana) == before


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"email": "not-an-email"}, "email", "'not-an-email' is not a valid email address"),
        ({"country": "XX"}, "country", "'XX' is not an ISO 3166-1 alpha-2 country code"),
        ({"tags": "[1]"}, "tags", 'Must be a JSON object, like {"key": "value"}.'),
        ({"traits": "{"}, "traits", 'Must be JSON, like {"key": "value"}.'),
        (
            {"traits": "{}"},
            "traits",
            "Traits cannot be removed here; set plan to null to clear it.",
        ),
    ],
)
def test_a_refused_edit_names_the_field_and_changes_nothing(
    member_client, workspace, ana, changes, field, error
):
    before = stored(workspace, ana)

    response = member_client.post(
        profile_url(workspace, ana, "edit/"), form_data(ana, first_name="Changed", **changes)
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {field: [error]}
    assert stored(workspace, ana) == before


def test_an_email_of_another_customer_is_a_conflict_and_changes_nothing(
    member_client, workspace, ana
):
    make_customer(workspace, external_id="u-2", email="bea@example.com")
    before = stored(workspace, ana)

    response = member_client.post(
        profile_url(workspace, ana, "edit/"),
        form_data(ana, email="bea@example.com", tags=json.dumps({})),
    )

    assert response.status_code == 409
    assert response.context["form"].errors == {"email": ["Another customer has this email"]}
    assert stored(workspace, ana) == before


@pytest.mark.parametrize("suffix", ["edit/", "delete/", "erase/"])
def test_a_viewer_can_neither_open_nor_post_the_actions(viewer_client, workspace, ana, suffix):
    before = stored(workspace, ana)

    assert viewer_client.get(profile_url(workspace, ana, suffix)).status_code == 403
    assert (
        viewer_client.post(
            profile_url(workspace, ana, suffix), form_data(ana, city="X")
        ).status_code
        == 403
    )
    assert viewer_client.get(profile_url(workspace, ana, "export.json")).status_code == 403
    assert stored(workspace, ana) == before


def test_viewers_see_no_action_buttons_and_marketers_no_erase(
    viewer_client, member_client, owner_client, workspace, ana
):
    edit, erase = profile_url(workspace, ana, "edit/"), profile_url(workspace, ana, "erase/")

    assert edit not in viewer_client.get(profile_url(workspace, ana)).content.decode()
    marketer_page = member_client.get(profile_url(workspace, ana)).content.decode()
    assert (edit in marketer_page, erase in marketer_page) == (True, False)
    assert erase in owner_client.get(profile_url(workspace, ana)).content.decode()


@pytest.mark.parametrize("suffix", ["edit/", "delete/", "erase/", "export.json"])
def test_an_outsider_gets_a_404_and_changes_nothing(outsider_client, workspace, ana, suffix):
    before = stored(workspace, ana)

    assert outsider_client.get(profile_url(workspace, ana, suffix)).status_code == 404
    assert outsider_client.post(profile_url(workspace, ana, suffix)).status_code in (404, 405)
    assert stored(workspace, ana) == before


def test_another_workspaces_customer_is_a_404(member_client, workspace, other_workspace):
    theirs = make_customer(other_workspace, external_id="theirs")

    response = member_client.post(profile_url(workspace, theirs, "delete/"))

    assert response.status_code == 404
    assert stored(other_workspace, theirs)["external_id"] == "theirs"


def test_delete_asks_first_then_deletes(member_client, workspace, ana):
    confirm = member_client.get(profile_url(workspace, ana, "delete/"))
    assert confirm.status_code == 200
    assert "Delete “Ana López”?" in confirm.content.decode()
    assert stored(workspace, ana) is not None

    response = member_client.post(profile_url(workspace, ana, "delete/"))

    assert response.status_code == 302
    assert response["Location"] == f"/w/{workspace.id}/customers/"
    assert stored(workspace, ana) is None
    with workspace_scope(workspace.id):
        assert ErasureTombstone.objects.count() == 0


def test_a_marketer_may_not_erase(member_client, workspace, ana):
    assert member_client.post(profile_url(workspace, ana, "erase/")).status_code == 403
    assert stored(workspace, ana) is not None


def test_an_owner_erases_with_tombstones(owner_client, owner, workspace, ana):
    assert (
        "Erase “Ana López”?"
        in owner_client.get(profile_url(workspace, ana, "erase/")).content.decode()
    )

    response = owner_client.post(profile_url(workspace, ana, "erase/"))

    assert response.status_code == 302
    assert stored(workspace, ana) is None
    with workspace_scope(workspace.id):
        assert sorted(ErasureTombstone.objects.values_list("erased_by", flat=True)) == [
            f"user:{owner.user.id}", f"user:{owner.user.id}",
        ]  # fmt: skip


def test_export_downloads_what_the_api_returns(member_client, workspace, ana):
    with workspace_scope(workspace.id):
        Event.objects.create(
            workspace=workspace, customer=ana, name="purchase", properties={"value": 5},
            occurred_at=timezone.now(), message_id="m-1", source="api",
        )  # fmt: skip

    response = member_client.get(profile_url(workspace, ana, "export.json"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="customer-{ana.id}.json"'
    body = json.loads(response.content)
    assert sorted(body) == [
        "consent_history",
        "devices",
        "events",
        "identities",
        "merges",
        "profile",
    ]
    assert (body["profile"]["email"], [event["name"] for event in body["events"]]) == (
        "ana@example.com", ["purchase"],
    )  # fmt: skip
