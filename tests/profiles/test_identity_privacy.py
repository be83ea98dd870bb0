"""Identify and merges, erasure (right to be forgotten) and export (data portability)."""

from datetime import UTC, datetime

import pytest

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import ApiKey
from masivo.tenancy.roles import Role
from profiles.models import (
    ConsentChange,
    Customer,
    CustomerMerge,
    Device,
    ErasureTombstone,
    Event,
    Identity,
)
from profiles.services.customers import identifier_hash
from tests.factories import CustomerFactory
from tests.profiles.helpers import client_with_role, get, rows, send

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers"
ERASED = "the customer was erased"


def customer_url(customer_id: int, suffix: str = "") -> str:
    return f"{CUSTOMERS}/{customer_id}{suffix}"


def make_customer(workspace, **fields) -> Customer:
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, **fields)


def secret_key_label(workspace) -> str:
    return f"api_key:{get(workspace, ApiKey, kind='secret').id}"


def events(workspace) -> list[tuple]:
    return rows(workspace, Event, "message_id", "customer_id")


def create_anonymous(api, **fields) -> int:
    response = send(api, "post", CUSTOMERS, fields)
    assert response.status_code == 201
    assert response.json()["is_anonymous"] is True
    return response.json()["id"]


# -- identify -----------------------------------------------------------------------------------


def test_a_customer_created_without_ids_is_anonymous(api, workspace):
    response = send(api, "post", CUSTOMERS, {})

    assert response.status_code == 201
    body = response.json()
    assert (body["external_id"], body["email"], body["is_anonymous"]) == (None, None, True)
    assert rows(workspace, Customer, "id", "external_id", "email", "is_anonymous") == [
        (body["id"], None, None, True)
    ]


def test_identify_makes_an_anonymous_customer_known(api, workspace):
    anonymous_id = create_anonymous(api)

    response = send(api, "post", customer_url(anonymous_id, "/identify"), {"external_id": "u1"})

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["external_id"], body["email"], body["is_anonymous"]) == (
        anonymous_id,
        "u1",
        None,
        False,
    )
    assert rows(workspace, Customer, "id", "external_id", "is_anonymous") == [
        (anonymous_id, "u1", False)
    ]
    assert rows(workspace, CustomerMerge, "id") == []


def test_identify_by_email_normalizes_it(api, workspace):
    anonymous_id = create_anonymous(api)

    response = send(
        api, "post", customer_url(anonymous_id, "/identify"), {"email": " Ana@Example.COM "}
    )

    assert response.status_code == 200
    assert rows(workspace, Customer, "id", "external_id", "email", "is_anonymous") == [
        (anonymous_id, None, "ana@example.com", False)
    ]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "external_id", "give an external_id or an email"),
        ({"external_id": "", "email": None}, "external_id", "give an external_id or an email"),
        ({"email": "not-an-email"}, "email", "'not-an-email' is not a valid email address"),
        ({"external_id": {"id": 1}}, "external_id", "must be a string"),
    ],
)
def test_identify_without_a_valid_id_is_a_400_and_nothing_changes(
    api, workspace, body, field, message
):
    anonymous_id = create_anonymous(api)

    response = send(api, "post", customer_url(anonymous_id, "/identify"), body)

    assert response.status_code == 400
    assert response.json() == {"detail": message, "code": "invalid", "errors": {field: [message]}}
    assert rows(workspace, Customer, "id", "external_id", "email", "is_anonymous") == [
        (anonymous_id, None, None, True)
    ]


def test_identify_with_someone_elses_id_merges_into_them(api, workspace):
    known = make_customer(
        workspace,
        external_id="u1",
        email="ana@example.com",
        first_name="Ana",
        city="",
        traits={"plan": "pro"},
    )
    anonymous_id = create_anonymous(api, city="CDMX", traits={"utm": "ad", "plan": "free"})
    events_body = {
        "events": [
            {"name": "Signup", "customer_id": known.id, "message_id": "known-1"},
            {"name": "Browse", "customer_id": anonymous_id, "message_id": "anon-1"},
        ]
    }
    assert send(api, "post", "/api/v1/events", events_body).json()["accepted"] == 2
    send(
        api,
        "patch",
        customer_url(anonymous_id, "/devices"),
        {"device_token": "anon-device", "device_info": {"platform": "web"}},
    )
    send(api, "patch", customer_url(anonymous_id, "/consent"), {"consent": {"advertising": False}})
    with workspace_scope(workspace.id):
        Identity.objects.create(
            workspace=workspace, customer_id=anonymous_id, kind="anonymous_id", value="cookie-1"
        )

    response = send(api, "post", customer_url(anonymous_id, "/identify"), {"external_id": "u1"})

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["external_id"], body["email"], body["first_name"]) == (
        known.id,
        "u1",
        "ana@example.com",
        "Ana",
    )
    assert (body["city"], body["traits"], body["is_anonymous"]) == (
        "CDMX",
        {"utm": "ad", "plan": "pro"},
        False,
    )
    assert body["consent"]["advertising"]["status"] == "denied"
    assert rows(workspace, Customer, "id") == [known.id]
    assert events(workspace) == [("known-1", known.id), ("anon-1", known.id)]
    assert rows(workspace, Device, "token", "customer_id") == [("anon-device", known.id)]
    assert rows(workspace, ConsentChange, "customer_id", "purpose", "status") == [
        (known.id, "advertising", "denied")
    ]
    assert rows(workspace, Identity, "kind", "value", "customer_id") == [
        ("anonymous_id", "cookie-1", known.id)
    ]
    merge = get(workspace, CustomerMerge)
    assert (merge.winner_id, merge.loser_id, merge.reason, merge.actor) == (
        known.id,
        anonymous_id,
        "identify",
        secret_key_label(workspace),
    )
    snapshot = merge.loser_snapshot
    assert (snapshot["city"], snapshot["traits"], snapshot["is_anonymous"]) == (
        "CDMX",
        {"utm": "ad", "plan": "free"},
        True,
    )
    assert api.get(customer_url(anonymous_id)).status_code == 404


def test_identify_with_someone_elses_email_merges_into_them(api, workspace):
    known = make_customer(workspace, external_id="u1", email="ana@example.com")
    anonymous_id = create_anonymous(api, tier="gold")

    response = send(
        api, "post", customer_url(anonymous_id, "/identify"), {"email": "ANA@example.com"}
    )

    assert response.status_code == 200
    assert rows(workspace, Customer, "id", "external_id", "email", "tier") == [
        (known.id, "u1", "ana@example.com", "gold")
    ]
    assert rows(workspace, CustomerMerge, "winner_id", "loser_id", "reason") == [
        (known.id, anonymous_id, "identify")
    ]


def test_alias_then_anonymous_event_in_one_batch_lands_on_the_merged_customer(tracking, workspace):
    """The anonymous id was linked to the alias's previous profile, which the alias deletes."""
    tracking.post("identify", {"userId": "old", "anonymousId": "a1", "messageId": "m1"})

    response = tracking.post(
        "batch",
        {
            "batch": [
                {"type": "alias", "previousId": "old", "userId": "new", "messageId": "m2"},
                {"type": "track", "anonymousId": "a1", "event": "After", "messageId": "m3"},
            ]
        },
    )

    assert response.status_code == 200
    assert response.json() == {"success": True}
    new = get(workspace, Customer, external_id="new")
    assert rows(workspace, Customer, "external_id") == ["new"]
    assert events(workspace) == [("m1", new.id), ("m2", new.id), ("m3", new.id)]
    # previousId may be an anonymous id or a user id, so it is linked as both.
    assert rows(workspace, Identity, "kind", "value", "customer_id") == [
        ("anonymous_id", "a1", new.id),
        ("anonymous_id", "old", new.id),
        ("alias", "old", new.id),
    ]


# -- erasure ------------------------------------------------------------------------------------


@pytest.fixture
def erasable(api, tracking, workspace):
    """u1 with events (one from an anonymous id), a device, consent history and an identity;
    u2 is a bystander whose data must survive."""
    tracking.post(
        "identify",
        {
            "userId": "u1",
            "anonymousId": "anon-1",
            "traits": {"email": "ana@example.com"},
            "messageId": "t1",
        },
    )
    tracking.post("track", {"userId": "u1", "event": "Bought", "messageId": "t2"})
    tracking.post("page", {"anonymousId": "anon-1", "name": "Home", "messageId": "t3"})
    tracking.post("track", {"userId": "u2", "event": "Bought", "messageId": "other-1"})
    u1 = get(workspace, Customer, external_id="u1")
    u2 = get(workspace, Customer, external_id="u2")
    send(
        api,
        "patch",
        customer_url(u1.id, "/devices"),
        {"device_token": "u1-device", "device_info": {"platform": "ios"}},
    )
    send(
        api,
        "patch",
        customer_url(u2.id, "/devices"),
        {"device_token": "u2-device", "device_info": {"platform": "ios"}},
    )
    send(api, "patch", customer_url(u1.id, "/consent"), {"consent": {"email_marketing": True}})
    assert events(workspace) == [
        ("t1", u1.id),
        ("t2", u1.id),
        ("t3", u1.id),
        ("other-1", u2.id),
    ]
    return u1, u2


def test_erase_deletes_everything_and_keeps_hashed_tombstones(api, workspace, erasable):
    u1, u2 = erasable

    response = api.post(customer_url(u1.id, "/erase"))

    assert response.status_code == 204
    assert rows(workspace, Customer, "external_id") == ["u2"]
    assert events(workspace) == [("other-1", u2.id)]
    assert rows(workspace, Device, "token") == ["u2-device"]
    assert rows(workspace, Identity, "id") == []
    assert rows(workspace, ConsentChange, "id") == []
    tombstones = rows(
        workspace,
        ErasureTombstone,
        "identifier_hash",
        "erased_by",
        "customer_id_was",
        order_by=("identifier_hash",),
    )
    label = secret_key_label(workspace)
    assert tombstones == sorted(
        (identifier_hash(workspace.id, kind, value), label, u1.id)
        for kind, value in [
            ("external_id", "u1"),
            ("email", "ana@example.com"),
            ("anonymous_id", "anon-1"),
        ]
    )
    assert api.get(customer_url(u1.id)).status_code == 404


def test_a_late_track_for_an_erased_customer_is_rejected_and_stores_nothing(
    api, tracking, workspace, erasable
):
    u1, u2 = erasable
    api.post(customer_url(u1.id, "/erase"))

    response = tracking.post("track", {"userId": "u1", "event": "Late", "messageId": "late-1"})

    assert response.status_code == 400
    assert response.json() == {
        "detail": ERASED,
        "code": "invalid",
        "success": False,
        "errors": {"message": [ERASED]},
        "rejected": [{"index": 0, "reason": ERASED, "messageId": "late-1"}],
    }
    assert rows(workspace, Customer, "external_id") == ["u2"]
    assert events(workspace) == [("other-1", u2.id)]


def test_every_message_naming_an_erased_id_is_rejected(api, tracking, workspace, erasable):
    u1, u2 = erasable
    api.post(customer_url(u1.id, "/erase"))

    response = tracking.post(
        "batch",
        {
            "batch": [
                {"type": "track", "userId": "u1", "event": "A", "messageId": "late-1"},
                {"type": "track", "userId": "u1", "event": "B", "messageId": "late-2"},
                {"type": "page", "anonymousId": "anon-1", "messageId": "late-3"},
                {
                    "type": "identify",
                    "userId": "u3",
                    "traits": {"email": "ANA@example.com"},
                    "messageId": "late-4",
                },
                {"type": "track", "userId": "u2", "event": "C", "messageId": "fine-1"},
            ]
        },
    )

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"] == [
        {"index": index, "reason": ERASED, "messageId": f"late-{index + 1}"} for index in range(4)
    ]
    assert rows(workspace, Customer, "external_id") == ["u2"]
    assert events(workspace) == [("other-1", u2.id), ("fine-1", u2.id)]


def test_the_native_events_api_refuses_an_erased_external_id(api, workspace, erasable):
    u1, _ = erasable
    api.post(customer_url(u1.id, "/erase"))

    response = send(
        api, "post", "/api/v1/events", {"name": "Late", "external_id": "u1", "message_id": "l-1"}
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "no event was accepted; `rejected` gives each one's reason",
        "code": "invalid",
        "accepted": 0,
        "duplicates": 0,
        "rejected": [{"index": 0, "reason": ERASED, "messageId": "l-1"}],
        "warnings": [],
    }
    assert rows(workspace, Customer, "external_id") == ["u2"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"external_id": "u1"}, "external_id"), ({"email": "Ana@example.com"}, "email")],
)
def test_an_erased_id_cannot_be_given_to_a_customer_again(api, workspace, erasable, body, field):
    u1, _ = erasable
    api.post(customer_url(u1.id, "/erase"))
    message = f"this {field} belongs to an erased customer"

    created = send(api, "post", CUSTOMERS, body)
    identified = send(api, "post", customer_url(create_anonymous(api), "/identify"), body)

    assert created.status_code == identified.status_code == 409
    assert (
        created.json()
        == identified.json()
        == {
            "detail": message,
            "code": "erased",
            "errors": {field: [message]},
        }
    )
    assert rows(workspace, Customer, "external_id", "email") == [
        ("u2", None),
        (None, None),
    ]


def test_a_marketer_key_cannot_erase(workspace, erasable):
    u1, _ = erasable
    marketer = client_with_role(workspace, Role.MARKETER)
    before = events(workspace)

    response = marketer.post(customer_url(u1.id, "/erase"))

    assert response.status_code == 403
    assert response.json() == {
        "detail": "the marketer role may not manage workspace",
        "code": "permission_denied",
    }
    assert rows(workspace, Customer, "external_id") == ["u1", "u2"]
    assert events(workspace) == before
    assert rows(workspace, Device, "token") == ["u1-device", "u2-device"]
    assert rows(workspace, ErasureTombstone, "id") == []


def test_erasing_an_anonymous_customer_leaves_a_tombstone_of_its_id(api, workspace):
    anonymous_id = create_anonymous(api)

    assert api.post(customer_url(anonymous_id, "/erase")).status_code == 204

    assert rows(workspace, Customer, "id") == []
    assert rows(workspace, ErasureTombstone, "identifier_hash", "customer_id_was") == [
        (identifier_hash(workspace.id, "customer", str(anonymous_id)), anonymous_id)
    ]


# -- export -------------------------------------------------------------------------------------


def at(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_export_returns_everything_held_about_the_customer(api, workspace):
    ana = make_customer(
        workspace,
        external_id="u1",
        email="ana@example.com",
        phone="+525512345678",
        first_name="Ana",
        last_name="López",
        birth_date=datetime(1990, 4, 2).date(),
        country="MX",
        tags={"vip": True},
        traits={"plan": "pro"},
        consent={"email_marketing": {"status": "granted", "at": "2026-01-03", "source": "form"}},
        created_at=at(1, 1),
        updated_at=at(1, 2),
    )
    bob = make_customer(workspace, external_id="u2")
    with workspace_scope(workspace.id):
        Identity.objects.create(
            workspace=workspace, customer=ana, kind="anonymous_id", value="a1", created_at=at(1, 4)
        )
        Device.objects.create(
            workspace=workspace,
            customer=ana,
            token="token-1",
            platform="android",
            model="Pixel 8",
            os_version="15",
            created_at=at(1, 5),
            expires_at=at(10, 2),
        )
        ConsentChange.objects.create(
            workspace=workspace,
            customer=ana,
            purpose="email_marketing",
            status="granted",
            source="form",
            changed_at=at(1, 3),
        )
        CustomerMerge.objects.create(
            workspace=workspace,
            winner=ana,
            loser_id=999,
            loser_snapshot={"city": "CDMX"},
            reason="alias",
            actor="segment",
            merged_at=at(1, 6),
        )
        for message_id, when, customer in [("e2", at(2, 2), ana), ("e1", at(2, 1), ana)]:
            Event.objects.create(
                workspace=workspace,
                customer=customer,
                name="Viewed",
                properties={"sku": message_id},
                context={"ip": "127.0.0.1"},
                occurred_at=when,
                message_id=message_id,
                source="api",
            )
        Event.objects.create(
            workspace=workspace,
            customer=bob,
            name="Bob's",
            occurred_at=at(2, 1),
            message_id="bob-1",
            source="api",
        )

    response = api.get(customer_url(ana.id, "/export"))

    assert response.status_code == 200
    assert response.json() == {
        "profile": {
            "id": ana.id,
            "external_id": "u1",
            "email": "ana@example.com",
            "phone": "+525512345678",
            "first_name": "Ana",
            "last_name": "López",
            "gender": "",
            "birth_date": "1990-04-02",
            "country": "MX",
            "city": "",
            "timezone": "",
            "locale": "",
            "tier": "",
            "status": "active",
            "is_anonymous": False,
            "tags": {"vip": True},
            "traits": {"plan": "pro"},
            "consent": {
                "email_marketing": {"status": "granted", "at": "2026-01-03", "source": "form"}
            },
            "consent_vendors": {},
            "consent_string": "",
            "consent_string_version": "",
            "created_at": "2026-01-01T00:00:00+00:00",
            "updated_at": "2026-01-02T00:00:00+00:00",
            "last_seen_at": None,
            "purchase_count": 0,
            "purchase_total": "0.00",
            "last_purchase_at": None,
            "purchases_30d_count": 0,
            "purchases_30d_total": "0.00",
            "purchases_month_count": 0,
            "purchases_month_total": "0.00",
            "metrics_updated_at": None,
        },
        "identities": [
            {"kind": "anonymous_id", "value": "a1", "created_at": "2026-01-04T00:00:00+00:00"}
        ],
        "devices": [
            {
                "token": "token-1",
                "platform": "android",
                "model": "Pixel 8",
                "os_version": "15",
                "created_at": "2026-01-05T00:00:00+00:00",
                "expires_at": "2026-10-02T00:00:00+00:00",
            }
        ],
        "consent_history": [
            {
                "purpose": "email_marketing",
                "vendor": "",
                "consent_string_version": "",
                "status": "granted",
                "source": "form",
                "changed_at": "2026-01-03T00:00:00+00:00",
            }
        ],
        "merges": [{"loser_id": 999, "reason": "alias", "merged_at": "2026-01-06T00:00:00+00:00"}],
        "events": [
            {
                "type": "track",
                "name": "Viewed",
                "properties": {"sku": "e1"},
                "occurred_at": "2026-02-01T00:00:00+00:00",
                "message_id": "e1",
                "context": {"ip": "127.0.0.1"},
            },
            {
                "type": "track",
                "name": "Viewed",
                "properties": {"sku": "e2"},
                "occurred_at": "2026-02-02T00:00:00+00:00",
                "message_id": "e2",
                "context": {"ip": "127.0.0.1"},
            },
        ],
    }
