"""Consent per purpose: the API, the history, the regime, `may_contact` and merges."""

from datetime import UTC, datetime

import pytest
from django.forms.models import model_to_dict

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from profiles.consent import combine_consent, consent_update, may_contact
from profiles.models import ConsentChange, ConsentPurpose, Customer, ProfileSettings
from profiles.services.customers import customers_merge
from tests.factories import CustomerFactory
from tests.profiles.helpers import client_with_role, drf_time, get, rows, send

pytestmark = pytest.mark.django_db

PURPOSES = [
    "email_marketing",
    "push_notifications",
    "whatsapp_marketing",
    "sms_marketing",
    "advertising",
    "behavioral_campaigns",
    "link_tracking",
]
UNKNOWN_PURPOSE = f"unknown purpose; one of {', '.join(PURPOSES)}"


def consent_url(customer_id: int) -> str:
    return f"/api/v1/customers/{customer_id}/consent"


def make_customer(workspace, **fields) -> Customer:
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, **fields)


def not_recorded(may: bool) -> dict:
    return {"status": None, "at": None, "source": None, "may_contact": may}


# What the consent resource answers about vendors and the consent string when none is recorded
# (tests/profiles/test_consent_vendors.py covers them).
NO_VENDORS = {
    "vendor_consent_required": False,
    "vendors": {},
    "vendor_history": [],
    "consent_string": None,
    "consent_string_version": None,
    "consent_string_history": [],
}


def history(workspace) -> list[tuple]:
    return rows(workspace, ConsentChange, "customer_id", "purpose", "status", "source")


def test_the_list_of_purposes_is_the_documented_one():
    assert ConsentPurpose.values == PURPOSES


def test_get_shows_every_purpose_not_recorded_under_opt_in(api, workspace):
    ana = make_customer(workspace)

    response = api.get(consent_url(ana.id))

    assert response.status_code == 200
    assert response.json() == {
        "regime": "opt_in",
        "purposes": {purpose: not_recorded(False) for purpose in PURPOSES},
        "history": [],
        **NO_VENDORS,
    }


def test_under_opt_out_not_recorded_means_may_contact(api, workspace):
    ana = make_customer(workspace)

    changed = send(api, "patch", "/api/v1/profile-settings", {"consent_regime": "opt_out"})

    assert changed.status_code == 200
    assert changed.json() == {
        "consent_regime": "opt_out",
        "vendor_consent_required": False,
        "purchase_event_names": ["purchase", "Order Completed", "order_completed"],
        "purchase_value_properties": ["value", "revenue", "total"],
        "device_token_ttl_days": 270,
        "max_identities_per_customer": 100,
        "event_retention_days": None,
    }
    assert api.get(consent_url(ana.id)).json() == {
        "regime": "opt_out",
        "purposes": {purpose: not_recorded(True) for purpose in PURPOSES},
        "history": [],
        **NO_VENDORS,
    }


def test_patch_records_decisions_with_their_source_and_history(api, workspace):
    ana = make_customer(workspace)

    response = send(
        api,
        "patch",
        consent_url(ana.id),
        {
            "consent": {"email_marketing": "granted", "advertising": "denied"},
            "source": " signup form ",
        },
    )

    assert response.status_code == 200
    changes = rows(workspace, ConsentChange, "purpose", "status", "source", "changed_at")
    assert [change[:3] for change in changes] == [
        ("email_marketing", "granted", "signup form"),
        ("advertising", "denied", "signup form"),
    ]
    changed_at = changes[0][3]
    assert changes[1][3] == changed_at
    record = {"at": changed_at.isoformat(), "source": "signup form"}
    assert get(workspace, Customer, id=ana.id).consent == {
        "email_marketing": {"status": "granted", **record},
        "advertising": {"status": "denied", **record},
    }
    assert response.json() == {
        "regime": "opt_in",
        "purposes": {
            **{purpose: not_recorded(False) for purpose in PURPOSES},
            "email_marketing": {"status": "granted", **record, "may_contact": True},
            "advertising": {"status": "denied", **record, "may_contact": False},
        },
        "history": [
            {
                "purpose": "advertising",
                "status": "denied",
                "source": "signup form",
                "changed_at": drf_time(changed_at),
            },
            {
                "purpose": "email_marketing",
                "status": "granted",
                "source": "signup form",
                "changed_at": drf_time(changed_at),
            },
        ],
        **NO_VENDORS,
    }
    assert api.get(consent_url(ana.id)).json() == response.json()


def test_the_source_defaults_to_api_and_booleans_mean_granted_or_denied(api, workspace):
    ana = make_customer(workspace)

    response = send(
        api,
        "patch",
        consent_url(ana.id),
        {"consent": {"sms_marketing": True, "whatsapp_marketing": False}},
    )

    assert response.status_code == 200
    assert history(workspace) == [
        (ana.id, "sms_marketing", "granted", "api"),
        (ana.id, "whatsapp_marketing", "denied", "api"),
    ]


def test_setting_the_current_value_again_records_nothing(api, workspace):
    ana = make_customer(workspace)
    send(api, "patch", consent_url(ana.id), {"consent": {"email_marketing": "granted"}})
    before = get(workspace, Customer, id=ana.id)

    response = send(
        api,
        "patch",
        consent_url(ana.id),
        {"consent": {"email_marketing": "granted"}, "source": "another form"},
    )

    assert response.status_code == 200
    assert response.json()["purposes"]["email_marketing"]["source"] == "api"
    assert history(workspace) == [(ana.id, "email_marketing", "granted", "api")]
    assert model_to_dict(get(workspace, Customer, id=ana.id)) == model_to_dict(before)


def test_null_clears_a_decision_and_is_recorded(api, workspace):
    ana = make_customer(workspace)
    send(
        api,
        "patch",
        consent_url(ana.id),
        {"consent": {"email_marketing": "granted", "advertising": "denied"}},
    )

    response = send(
        api, "patch", consent_url(ana.id), {"consent": {"email_marketing": None}, "source": "app"}
    )

    assert response.status_code == 200
    assert response.json()["purposes"]["email_marketing"] == not_recorded(False)
    assert list(get(workspace, Customer, id=ana.id).consent) == ["advertising"]
    assert history(workspace) == [
        (ana.id, "email_marketing", "granted", "api"),
        (ana.id, "advertising", "denied", "api"),
        (ana.id, "email_marketing", None, "app"),
    ]
    assert response.json()["history"][0] == {
        "purpose": "email_marketing",
        "status": None,
        "source": "app",
        "changed_at": drf_time(rows(workspace, ConsentChange, "changed_at")[-1]),
    }


def test_clearing_what_was_never_recorded_records_nothing(api, workspace):
    ana = make_customer(workspace)

    response = send(api, "patch", consent_url(ana.id), {"consent": {"link_tracking": None}})

    assert response.status_code == 200
    assert history(workspace) == []
    assert get(workspace, Customer, id=ana.id).consent == {}


def test_nul_characters_are_removed_from_the_source(api, workspace):
    ana = make_customer(workspace)

    response = send(
        api,
        "patch",
        consent_url(ana.id),
        {"consent": {"email_marketing": "granted"}, "source": "web\x00 form"},
    )

    assert response.status_code == 200
    assert history(workspace) == [(ana.id, "email_marketing", "granted", "web form")]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"consent": {"carrier_pigeon": "granted"}}, "consent.carrier_pigeon", UNKNOWN_PURPOSE),
        (
            {"consent": {"email_marketing": "maybe"}},
            "consent.email_marketing",
            "granted, denied or null",
        ),
        (
            {"consent": {"email_marketing": "granted", "sms_marketing": 1}},
            "consent.sms_marketing",
            "granted, denied or null",
        ),
        (
            {"consent": {"email_marketing": "granted", "fax": "denied"}},
            "consent.fax",
            UNKNOWN_PURPOSE,
        ),
        (
            {"consent": ["email_marketing"]},
            "consent",
            "must be an object of purpose → granted | denied | null",
        ),
        ({}, "consent", "must be an object of purpose → granted | denied | null"),
    ],
)
def test_a_bad_purpose_or_status_is_a_400_naming_it_and_nothing_changes(
    api, workspace, body, field, message
):
    ana = make_customer(workspace)

    response = send(api, "patch", consent_url(ana.id), body)

    assert response.status_code == 400
    assert response.json() == {"detail": message, "code": "invalid", "errors": {field: [message]}}
    assert get(workspace, Customer, id=ana.id).consent == {}
    assert history(workspace) == []


@pytest.mark.parametrize("source", ["", "   ", 5, "x" * 101, None])
def test_a_bad_source_is_a_400(api, workspace, source):
    ana = make_customer(workspace)

    response = send(
        api,
        "patch",
        consent_url(ana.id),
        {"consent": {"email_marketing": "granted"}, "source": source},
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid input",
        "code": "invalid",
        "errors": {"source": ["a string of 1 to 100 characters"]},
    }
    assert history(workspace) == []


def test_a_viewer_key_reads_consent_but_cannot_change_it(workspace):
    viewer = client_with_role(workspace, Role.VIEWER)
    ana = make_customer(workspace)

    assert viewer.get(consent_url(ana.id)).status_code == 200
    response = send(viewer, "patch", consent_url(ana.id), {"consent": {"advertising": "granted"}})

    assert response.status_code == 403
    assert response.json() == {
        "detail": "the viewer role may not edit marketing",
        "code": "permission_denied",
    }
    assert get(workspace, Customer, id=ana.id).consent == {}
    assert history(workspace) == []


def test_a_viewer_key_cannot_change_the_regime(workspace):
    viewer = client_with_role(workspace, Role.VIEWER)

    response = send(viewer, "patch", "/api/v1/profile-settings", {"consent_regime": "opt_out"})

    assert response.status_code == 403
    with workspace_scope(workspace.id):
        assert list(ProfileSettings.objects.values_list("consent_regime", flat=True)) == []


# -- may_contact ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regime", "status", "expected"),
    [
        ("opt_in", "granted", True),
        ("opt_in", "denied", False),
        ("opt_in", None, False),
        ("opt_out", "granted", True),
        ("opt_out", "denied", False),
        ("opt_out", None, True),
    ],
)
def test_may_contact(regime, status, expected):
    consent = {} if status is None else {"push_notifications": {"status": status}}
    customer = Customer(consent=consent)
    settings = ProfileSettings(consent_regime=regime)

    assert may_contact(customer, "push_notifications", settings=settings) is expected


def test_may_contact_only_knows_the_listed_purposes():
    with pytest.raises(ValueError, match="unknown consent purpose 'fax'"):
        may_contact(Customer(consent={}), "fax", settings=ProfileSettings())


def test_a_decision_for_another_purpose_does_not_count():
    customer = Customer(consent={"email_marketing": {"status": "granted"}})
    settings = ProfileSettings(consent_regime="opt_in")
    assert may_contact(customer, "sms_marketing", settings=settings) is False


# -- merges ---------------------------------------------------------------------------------------

WINNER = {"status": "granted", "at": "2026-01-01T00:00:00+00:00", "source": "winner"}
WINNER_DENIED = {"status": "denied", "at": "2026-01-01T00:00:00+00:00", "source": "winner"}
LOSER = {"status": "granted", "at": "2026-02-01T00:00:00+00:00", "source": "loser"}
LOSER_DENIED = {"status": "denied", "at": "2026-02-01T00:00:00+00:00", "source": "loser"}


@pytest.mark.parametrize(
    ("winner", "loser", "combined"),
    [
        (WINNER, LOSER_DENIED, LOSER_DENIED),
        (WINNER_DENIED, LOSER, WINNER_DENIED),
        (WINNER_DENIED, LOSER_DENIED, WINNER_DENIED),
        (WINNER, LOSER, WINNER),
        (None, LOSER, LOSER),
        (None, LOSER_DENIED, LOSER_DENIED),
        (WINNER, None, WINNER),
    ],
)
def test_combine_consent_a_denial_on_either_side_wins(winner, loser, combined):
    as_map = {"advertising": winner} if winner else {}
    other = {"advertising": loser} if loser else {}
    assert combine_consent(as_map, other) == {"advertising": combined}


def test_merging_combines_consent_and_moves_the_history(workspace):
    known = make_customer(workspace, external_id="u1")
    other = make_customer(workspace, external_id="u2")
    with workspace_scope(workspace.id):
        consent_update(
            customer=known,
            changes={
                "email_marketing": "granted",
                "push_notifications": "denied",
                "sms_marketing": "granted",
            },
            source="known",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
        consent_update(
            customer=other,
            changes={
                "email_marketing": "denied",
                "push_notifications": "granted",
                "advertising": "granted",
            },
            source="other",
            now=datetime(2026, 2, 1, tzinfo=UTC),
        )
        customers_merge(winner=known, loser=other, reason="test", actor="system")

    january = {"at": "2026-01-01T00:00:00+00:00", "source": "known"}
    february = {"at": "2026-02-01T00:00:00+00:00", "source": "other"}
    assert rows(workspace, Customer, "external_id") == ["u1"]
    assert get(workspace, Customer, id=known.id).consent == {
        "email_marketing": {"status": "denied", **february},
        "push_notifications": {"status": "denied", **january},
        "sms_marketing": {"status": "granted", **january},
        "advertising": {"status": "granted", **february},
    }
    assert history(workspace) == [
        (known.id, "email_marketing", "granted", "known"),
        (known.id, "push_notifications", "denied", "known"),
        (known.id, "sms_marketing", "granted", "known"),
        (known.id, "email_marketing", "denied", "other"),
        (known.id, "push_notifications", "granted", "other"),
        (known.id, "advertising", "granted", "other"),
    ]


def test_identify_into_a_known_customer_keeps_the_anonymous_denial(api, workspace):
    known = make_customer(workspace, external_id="u1")
    anonymous_id = send(api, "post", "/api/v1/customers", {}).json()["id"]
    send(api, "patch", consent_url(known.id), {"consent": {"email_marketing": "granted"}})
    send(
        api,
        "patch",
        consent_url(anonymous_id),
        {"consent": {"email_marketing": "denied"}, "source": "cookie banner"},
    )

    response = send(
        api, "post", f"/api/v1/customers/{anonymous_id}/identify", {"external_id": "u1"}
    )

    assert response.status_code == 200
    assert response.json()["id"] == known.id
    consent = api.get(consent_url(known.id)).json()
    assert consent["purposes"]["email_marketing"]["status"] == "denied"
    assert consent["purposes"]["email_marketing"]["source"] == "cookie banner"
    assert consent["purposes"]["email_marketing"]["may_contact"] is False
    assert [(c["status"], c["source"]) for c in consent["history"]] == [
        ("denied", "cookie banner"),
        ("granted", "api"),
    ]
    assert history(workspace) == [
        (known.id, "email_marketing", "granted", "api"),
        (known.id, "email_marketing", "denied", "cookie banner"),
    ]
