"""Consent per vendor and the consent string: the API's `consent` object, what is stored, the
history, the profile changes, merges, the `vendor_consent_required` setting and the pages."""

from datetime import UTC, datetime

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from masivo.tenancy.context import workspace_scope
from profiles.consent import consent_update
from profiles.models import ConsentChange, Customer, ProfileChange
from profiles.services.customers import customers_merge
from profiles.services.settings import profile_settings_get
from tests.factories import CustomerFactory
from tests.profiles.helpers import drf_time, get, rows, send

pytestmark = pytest.mark.django_db

# An IAB TCF v2.2 string, as a CMP gives it (stored as it is, never decoded).
TCF = (
    "CQF0x4AQF0x4AAHABBENBJFgAP_gAEPgAAqIKFNd_X__bX9n-_7_6ft0eY1f9_r37uQzDhfNs-8F3L_W_LwX32E7N"
    "F36tq4KmR4ku1bBIQNtHMnUDUmxaolVrzHsak2cpyNKJ_BkknsZe2dYGF9vm5tj-QKZ7_5_d3f52T_9_9v-39z339"
    "13v3d93-_13LjdV5_9H_v9fR_b8_Kf9_5-_4v8_____3_e______8A"
)
JANUARY = datetime(2026, 1, 1, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)


def consent_url(customer_id: int) -> str:
    return f"/api/v1/customers/{customer_id}/consent"


def make_customer(workspace, **fields) -> Customer:
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, **fields)


def history(workspace) -> list[tuple]:
    return rows(
        workspace,
        ConsentChange,
        "purpose",
        "vendor",
        "consent_string_version",
        "status",
        "source",
    )


def consent_changes(workspace) -> list[tuple]:
    """(customer id, keys) of the profile changes consent writes recorded."""
    with workspace_scope(workspace.id):
        return list(
            ProfileChange.objects.filter(source="consent")
            .order_by("id")
            .values_list("customer_id", "keys")
        )


def stored(workspace, customer: Customer) -> tuple:
    current = get(workspace, Customer, id=customer.id)
    return (
        current.consent,
        current.consent_vendors,
        current.consent_string,
        current.consent_string_version,
    )


def vendor_consent_required(workspace) -> bool:
    with workspace_scope(workspace.id):
        return profile_settings_get(workspace=workspace).vendor_consent_required


def record(status: str, at: datetime, source: str = "api") -> dict:
    return {"status": status, "at": at.isoformat(), "source": source}


def patch(api, customer, consent: dict, **body):
    return send(api, "patch", consent_url(customer.id), {"consent": consent, **body})


# -- writes -------------------------------------------------------------------------------------


def test_vendors_and_the_string_are_stored_with_history_and_profile_changes(api, workspace):
    ana = make_customer(workspace)

    response = patch(
        api,
        ana,
        {
            "email_marketing": "granted",
            "vendors": {"meta": False, "google_ads": "granted", "tiktok-events": True},
            "consent_string": f"  {TCF}\n",
            "consent_string_version": " tcf2.2 ",
        },
        source="cmp",
    )

    assert response.status_code == 200
    changed_at = rows(workspace, ConsentChange, "changed_at")[0]
    assert stored(workspace, ana) == (
        {"email_marketing": record("granted", changed_at, "cmp")},
        {
            "meta": record("denied", changed_at, "cmp"),
            "google_ads": record("granted", changed_at, "cmp"),
            "tiktok-events": record("granted", changed_at, "cmp"),
        },
        TCF,
        "tcf2.2",
    )
    assert history(workspace) == [
        ("email_marketing", "", "", "granted", "cmp"),
        ("vendor", "meta", "", "denied", "cmp"),
        ("vendor", "google_ads", "", "granted", "cmp"),
        ("vendor", "tiktok-events", "", "granted", "cmp"),
        ("consent_string", "", "tcf2.2", None, "cmp"),
    ]
    assert rows(workspace, ConsentChange, "changed_at") == [changed_at] * 5
    assert consent_changes(workspace) == [
        (
            ana.id,
            [
                "consent:email_marketing",
                "consent_string",
                "consent_vendor:google_ads",
                "consent_vendor:meta",
                "consent_vendor:tiktok-events",
                "field:updated_at",
            ],
        )
    ]
    body = response.json()
    assert body["purposes"]["email_marketing"] == {
        "status": "granted",
        "at": changed_at.isoformat(),
        "source": "cmp",
        "may_contact": True,
    }
    at = drf_time(changed_at)
    assert {key: value for key, value in body.items() if key not in ("purposes", "regime")} == {
        "history": [
            {"purpose": "email_marketing", "status": "granted", "source": "cmp", "changed_at": at}
        ],
        "vendor_consent_required": False,
        "vendors": {
            "meta": record("denied", changed_at, "cmp"),
            "google_ads": record("granted", changed_at, "cmp"),
            "tiktok-events": record("granted", changed_at, "cmp"),
        },
        "vendor_history": [
            {"vendor": "tiktok-events", "status": "granted", "source": "cmp", "changed_at": at},
            {"vendor": "google_ads", "status": "granted", "source": "cmp", "changed_at": at},
            {"vendor": "meta", "status": "denied", "source": "cmp", "changed_at": at},
        ],
        "consent_string": TCF,
        "consent_string_version": "tcf2.2",
        "consent_string_history": [
            {"consent_string_version": "tcf2.2", "source": "cmp", "changed_at": at}
        ],
    }
    assert api.get(consent_url(ana.id)).json() == body


def test_the_same_values_again_record_nothing(api, workspace):
    ana = make_customer(workspace)
    consent = {"vendors": {"meta": True}, "consent_string": TCF, "consent_string_version": "tcf2.2"}
    patch(api, ana, consent)
    before = model_to_dict(get(workspace, Customer, id=ana.id))

    response = patch(api, ana, consent, source="another form")

    assert response.status_code == 200
    assert response.json()["vendors"]["meta"]["source"] == "api"
    assert model_to_dict(get(workspace, Customer, id=ana.id)) == before
    assert len(history(workspace)) == 2
    assert len(consent_changes(workspace)) == 1


def test_null_clears_a_vendor_and_the_string_and_each_is_recorded(api, workspace):
    ana = make_customer(workspace)
    patch(
        api,
        ana,
        {
            "vendors": {"meta": True, "braze": False},
            "consent_string": TCF,
            "consent_string_version": "tcf2.2",
        },
    )

    response = patch(
        api, ana, {"vendors": {"meta": None, "s3": None}, "consent_string": None}, source="app"
    )

    assert response.status_code == 200
    current = get(workspace, Customer, id=ana.id)
    assert list(current.consent_vendors) == ["braze"]
    assert (current.consent_string, current.consent_string_version) == ("", "")
    assert history(workspace)[3:] == [
        ("vendor", "meta", "", None, "app"),
        ("consent_string", "", "", None, "app"),
    ]
    assert consent_changes(workspace)[1] == (
        ana.id,
        ["consent_string", "consent_vendor:meta", "field:updated_at"],
    )
    body = response.json()
    assert (body["consent_string"], body["consent_string_version"]) == (None, None)
    assert body["consent_string_history"][0]["consent_string_version"] is None
    assert body["vendor_history"][0] == {
        "vendor": "meta",
        "status": None,
        "source": "app",
        "changed_at": drf_time(rows(workspace, ConsentChange, "changed_at")[-1]),
    }


def test_an_empty_string_clears_it_too_and_a_new_one_replaces_it(api, workspace):
    ana = make_customer(workspace)
    patch(api, ana, {"consent_string": "old", "consent_string_version": "tcf2.2"})
    patch(api, ana, {"consent_string": "", "consent_string_version": None})
    patch(api, ana, {"consent_string": "new", "consent_string_version": "gpp1"})

    assert stored(workspace, ana)[2:] == ("new", "gpp1")
    assert [change[2] for change in history(workspace)] == ["tcf2.2", "", "gpp1"]


def test_a_purposes_only_request_answers_and_records_as_before(api, workspace):
    ana = make_customer(workspace)
    patch(api, ana, {"vendors": {"meta": False}})

    response = patch(api, ana, {"advertising": True, "sms_marketing": "denied"})

    assert response.status_code == 200
    assert [change["purpose"] for change in response.json()["history"]] == [
        "sms_marketing",
        "advertising",
    ]
    assert history(workspace)[1:] == [
        ("advertising", "", "", "granted", "api"),
        ("sms_marketing", "", "", "denied", "api"),
    ]
    assert consent_changes(workspace)[1] == (
        ana.id,
        ["consent:advertising", "consent:sms_marketing", "field:updated_at"],
    )
    assert stored(workspace, ana)[1]["meta"]["status"] == "denied"


def test_the_customer_shows_its_vendors_and_whether_a_string_is_stored(api, workspace):
    ana = make_customer(workspace)
    blank = api.get(f"/api/v1/customers/{ana.id}").json()
    patch(
        api,
        ana,
        {"vendors": {"meta": False}, "consent_string": TCF, "consent_string_version": "tcf2.2"},
    )

    shown = api.get(f"/api/v1/customers/{ana.id}").json()

    assert {key: blank[key] for key in ("consent_vendors", "consent_string_version")} == {
        "consent_vendors": {},
        "consent_string_version": None,
    }
    assert blank["has_consent_string"] is False
    at = stored(workspace, ana)[1]["meta"]["at"]
    assert {
        key: shown[key]
        for key in ("consent_vendors", "consent_string_version", "has_consent_string")
    } == {
        "consent_vendors": {"meta": {"status": "denied", "at": at, "source": "api"}},
        "consent_string_version": "tcf2.2",
        "has_consent_string": True,
    }
    assert "consent_string" not in shown


# -- bad input ----------------------------------------------------------------------------------


NOT_AN_OBJECT = "must be an object of vendor key → granted | denied | null"
KEY_RULE = "a vendor key is 1 to 64 characters of a-z, 0-9, _ and -"
DECISION = "granted, denied or null"
VERSION_REQUIRED = "required with a consent_string (e.g. tcf2.2)"
VERSION_TEXT = "a string of at most 20 characters, or null"
STRING_TEXT = "a string of at most 10,000 characters, or null"
VENDORS = "consent.vendors"
STRING = "consent.consent_string"
VERSION = "consent.consent_string_version"


@pytest.mark.parametrize(
    ("consent", "field", "message"),
    [
        ({"vendors": None}, VENDORS, NOT_AN_OBJECT),
        ({"vendors": ["meta"]}, VENDORS, NOT_AN_OBJECT),
        ({"vendors": {"Meta": True}}, f"{VENDORS}.Meta", KEY_RULE),
        ({"vendors": {"": True}}, f"{VENDORS}.", KEY_RULE),
        ({"vendors": {"a" * 65: True}}, f"{VENDORS}.{'a' * 65}", KEY_RULE),
        ({"vendors": {"meta ads": True}}, f"{VENDORS}.meta ads", KEY_RULE),
        ({"vendors": {"meta": "maybe"}}, f"{VENDORS}.meta", DECISION),
        ({"vendors": {"meta": 1}}, f"{VENDORS}.meta", DECISION),
        ({"vendors": {f"v{n}": True for n in range(201)}}, VENDORS, "at most 200 vendors"),
        ({"consent_string": TCF}, VERSION, VERSION_REQUIRED),
        ({"consent_string": TCF, "consent_string_version": " "}, VERSION, VERSION_REQUIRED),
        ({"consent_string": TCF, "consent_string_version": "v" * 21}, VERSION, VERSION_TEXT),
        ({"consent_string": TCF, "consent_string_version": 2.2}, VERSION, VERSION_TEXT),
        ({"consent_string": "x" * 10_001, "consent_string_version": "v1"}, STRING, STRING_TEXT),
        ({"consent_string": {"tcf": TCF}, "consent_string_version": "v1"}, STRING, STRING_TEXT),
        ({"consent_string_version": "tcf2.2"}, VERSION, "only with a consent_string"),
        (
            {"consent_string": None, "consent_string_version": "tcf2.2"},
            VERSION,
            "only with a consent_string (null clears both)",
        ),
        ({"email_marketing": "granted", "vendors": {"meta": "yes"}}, f"{VENDORS}.meta", DECISION),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    api, workspace, consent, field, message
):
    ana = make_customer(workspace)
    before = model_to_dict(get(workspace, Customer, id=ana.id))

    response = patch(api, ana, consent)

    assert response.status_code == 400
    assert response.json() == {"detail": message, "code": "invalid", "errors": {field: [message]}}
    assert model_to_dict(get(workspace, Customer, id=ana.id)) == before
    assert history(workspace) == []
    assert consent_changes(workspace) == []


def test_a_null_version_alone_changes_nothing(api, workspace):
    ana = make_customer(workspace)
    patch(api, ana, {"consent_string": TCF, "consent_string_version": "tcf2.2"})

    response = patch(api, ana, {"email_marketing": "denied", "consent_string_version": None})

    assert response.status_code == 200
    assert stored(workspace, ana)[2:] == (TCF, "tcf2.2")
    assert [change[0] for change in history(workspace)] == ["consent_string", "email_marketing"]


def test_a_string_of_exactly_the_limits_is_stored(api, workspace):
    ana = make_customer(workspace)

    response = patch(api, ana, {"consent_string": "x" * 10_000, "consent_string_version": "v" * 20})

    assert response.status_code == 200
    assert stored(workspace, ana)[2:] == ("x" * 10_000, "v" * 20)


def test_more_than_200_vendors_on_one_customer_is_refused_and_rolled_back(api, workspace):
    ana = make_customer(workspace)
    patch(api, ana, {"vendors": {f"v{n}": True for n in range(200)}})
    before = model_to_dict(get(workspace, Customer, id=ana.id))

    response = patch(api, ana, {"email_marketing": "granted", "vendors": {"one-more": False}})

    assert response.status_code == 400
    assert response.json()["errors"] == {"consent.vendors": ["at most 200 vendors per customer"]}
    assert model_to_dict(get(workspace, Customer, id=ana.id)) == before
    assert len(history(workspace)) == 200
    assert len(consent_changes(workspace)) == 1


def test_another_workspaces_customer_is_a_404_and_unchanged(api, other_api, workspace):
    ana = make_customer(workspace)

    response = patch(other_api, ana, {"vendors": {"meta": True}})

    assert response.status_code == 404
    assert stored(workspace, ana) == ({}, {}, "", "")
    assert history(workspace) == []


# -- merges -------------------------------------------------------------------------------------


def test_a_merge_keeps_a_vendor_denial_from_either_side_and_the_winners_string(workspace):
    known = make_customer(workspace, external_id="u1")
    other = make_customer(workspace)
    with workspace_scope(workspace.id):
        consent_update(
            customer=known,
            changes={
                "vendors": {"meta": "granted", "braze": "denied", "s3": "granted"},
                "consent_string": "known-string",
                "consent_string_version": "tcf2.2",
            },
            source="known",
            now=JANUARY,
        )
        consent_update(
            customer=other,
            changes={
                "vendors": {"meta": "denied", "braze": "granted", "ga4": "granted"},
                "consent_string": "other-string",
                "consent_string_version": "tcf2.3",
            },
            source="other",
            now=FEBRUARY,
        )
        customers_merge(winner=known, loser=other, reason="test", actor="system")

    assert stored(workspace, known)[1:] == (
        {
            "meta": record("denied", FEBRUARY, "other"),
            "braze": record("denied", JANUARY, "known"),
            "s3": record("granted", JANUARY, "known"),
            "ga4": record("granted", FEBRUARY, "other"),
        },
        "known-string",
        "tcf2.2",
    )
    assert rows(workspace, ConsentChange, "customer_id", "vendor", "consent_string_version") == [
        (known.id, "meta", ""),
        (known.id, "braze", ""),
        (known.id, "s3", ""),
        (known.id, "", "tcf2.2"),
        (known.id, "meta", ""),
        (known.id, "braze", ""),
        (known.id, "ga4", ""),
        (known.id, "", "tcf2.3"),
    ]


def test_a_merge_takes_the_losers_string_when_the_winner_has_none(workspace):
    known = make_customer(workspace, external_id="u1")
    other = make_customer(workspace)
    with workspace_scope(workspace.id):
        consent_update(
            customer=other,
            changes={"consent_string": "other-string", "consent_string_version": "gpp1"},
            source="other",
            now=FEBRUARY,
        )
        customers_merge(winner=known, loser=other, reason="test", actor="system")

    assert stored(workspace, known)[1:] == ({}, "other-string", "gpp1")


# -- the setting --------------------------------------------------------------------------------


def test_vendor_consent_required_round_trips_through_the_api(api, workspace):
    assert api.get("/api/v1/profile-settings").json()["vendor_consent_required"] is False

    response = send(api, "patch", "/api/v1/profile-settings", {"vendor_consent_required": True})

    assert response.status_code == 200
    assert response.json()["vendor_consent_required"] is True
    assert vendor_consent_required(workspace) is True
    assert api.get("/api/v1/profile-settings").json()["vendor_consent_required"] is True
    ana = make_customer(workspace)
    assert api.get(consent_url(ana.id)).json()["vendor_consent_required"] is True


@pytest.mark.parametrize("value", ["maybe", 0, "true", "on"])
def test_a_bad_vendor_consent_required_is_a_400_naming_it(api, workspace, value):
    response = send(api, "patch", "/api/v1/profile-settings", {"vendor_consent_required": value})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid input",
        "code": "invalid",
        "errors": {"vendor_consent_required": ["must be true or false"]},
    }
    assert vendor_consent_required(workspace) is False


def signed_in(member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def test_the_settings_page_edits_vendor_consent_required(owner, workspace):
    client = signed_in(owner)
    posted = {
        "consent_regime": "opt_in",
        "purchase_event_names": "purchase",
        "purchase_value_properties": "value",
        "device_token_ttl_days": "270",
    }

    client.post(
        f"/w/{workspace.id}/settings/profiles/", {**posted, "vendor_consent_required": "on"}
    )
    required = vendor_consent_required(workspace)
    page = client.get(f"/w/{workspace.id}/settings/")
    client.post(f"/w/{workspace.id}/settings/profiles/", posted)

    assert required is True
    assert page.context["profile_form"].initial["vendor_consent_required"] is True
    assert "Vendor consent required" in page.content.decode()
    assert vendor_consent_required(workspace) is False


def test_the_customer_page_shows_vendor_decisions_and_the_string(api, owner, workspace):
    ana = make_customer(workspace)
    patch(
        api,
        ana,
        {"vendors": {"meta": False}, "consent_string": TCF, "consent_string_version": "tcf2.2"},
        source="cmp",
    )

    content = signed_in(owner).get(f"/w/{workspace.id}/customers/{ana.id}/").content.decode()

    assert '<th scope="row" class="cell-label"><code>meta</code></th>' in content
    assert '<span class="badge badge-danger">Denied</span>' in content
    assert f"stored, version <code>tcf2.2</code> ({len(TCF)} characters;" in content
    assert "Vendor <code>meta</code>" in content
    assert "Consent string <code>tcf2.2</code>" in content
