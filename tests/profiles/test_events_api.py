"""The native events API: POST /api/v1/events, GET /api/v1/events and a customer's events."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from profiles.models import Customer, Event
from tests.factories import CustomerFactory
from tests.profiles.helpers import client_with_role, drf_time, get, rows, send

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"
NOTHING_WRONG = {"rejected": [], "warnings": []}


def make_customer(workspace, **fields) -> Customer:
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, **fields)


def stored(workspace) -> list[tuple]:
    return rows(workspace, Event, "message_id", "name", "customer_id", "user_id", "anonymous_id")


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


@pytest.fixture
def ana(workspace):
    return make_customer(workspace, external_id="ana")


# -- POST ---------------------------------------------------------------------------------------


def test_one_event_by_customer_id(api, workspace, ana):
    response = send(
        api,
        "post",
        EVENTS,
        {
            "name": " Viewed Product\x00 ",
            "customer_id": ana.id,
            "properties": {"sku": "A-1", "price": 9.5, "tags": ["x\x00"]},
            "context": {"channel": "pos"},
            "occurred_at": "2026-11-01T10:00:00-06:00",
            "message_id": "e-1",
        },
    )

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, **NOTHING_WRONG}
    event = get(workspace, Event, message_id="e-1")
    assert (event.type, event.name, event.customer_id, event.user_id, event.anonymous_id) == (
        "track",
        "Viewed Product",
        ana.id,
        "",
        "",
    )
    assert event.properties == {"sku": "A-1", "price": 9.5, "tags": ["x"]}
    assert event.context == {"channel": "pos"}
    assert event.occurred_at == at(1, 16)
    assert (event.source, event.processed_at) == ("api", None)


def test_an_event_by_external_id_creates_the_customer(api, workspace, ana):
    response = send(api, "post", EVENTS, {"name": "Signup", "external_id": "u9", "message_id": "e"})

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, **NOTHING_WRONG}
    u9 = get(workspace, Customer, external_id="u9")
    assert (u9.email, u9.is_anonymous) == (None, False)
    assert stored(workspace) == [("e", "Signup", u9.id, "u9", "")]


def test_an_event_by_anonymous_id_has_no_customer(api, workspace):
    response = send(
        api, "post", EVENTS, {"name": "Browse", "anonymous_id": "a1", "message_id": "e"}
    )

    assert response.status_code == 200
    assert stored(workspace) == [("e", "Browse", None, "", "a1")]
    assert rows(workspace, Customer, "id") == []


def test_without_occurred_at_the_event_happened_when_it_was_received(api, workspace, ana):
    send(api, "post", EVENTS, {"name": "Now", "customer_id": ana.id, "message_id": "e"})

    event = get(workspace, Event, message_id="e")
    assert event.occurred_at == event.received_at


def test_a_far_future_occurred_at_becomes_the_received_time(api, workspace, ana):
    body = {"name": "Later", "customer_id": ana.id, "occurred_at": "2999-01-01T00:00:00Z"}

    send(api, "post", EVENTS, body | {"message_id": "e"})

    event = get(workspace, Event, message_id="e")
    assert event.occurred_at == event.received_at
    assert event.context == {"masivo": {"original_timestamp": "2999-01-01T00:00:00Z"}}


def test_a_batch_names_customers_every_way(api, workspace, ana):
    response = send(
        api,
        "post",
        EVENTS,
        {
            "events": [
                {"name": "A", "customer_id": ana.id, "message_id": "b-1"},
                {"name": "B", "external_id": "ana", "message_id": "b-2"},
                {"name": "C", "external_id": "new", "message_id": "b-3"},
                {"name": "D", "anonymous_id": "anon-1", "message_id": "b-4"},
            ]
        },
    )

    assert response.status_code == 200
    assert response.json() == {"accepted": 4, "duplicates": 0, **NOTHING_WRONG}
    new = get(workspace, Customer, external_id="new")
    assert stored(workspace) == [
        ("b-1", "A", ana.id, "", ""),
        ("b-2", "B", ana.id, "ana", ""),
        ("b-3", "C", new.id, "new", ""),
        ("b-4", "D", None, "", "anon-1"),
    ]


def test_an_unknown_or_foreign_customer_id_rejects_that_event_only(
    api, workspace, other_workspace, ana
):
    foreign = make_customer(other_workspace, external_id="theirs")

    response = send(
        api,
        "post",
        EVENTS,
        {
            "events": [
                {"name": "Fine", "customer_id": ana.id, "message_id": "ok"},
                {"name": "Missing", "customer_id": 2_000_000_000, "message_id": "missing"},
                {"name": "Foreign", "customer_id": foreign.id, "message_id": "foreign"},
            ]
        },
    )

    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [
            {"index": 1, "reason": "no such customer", "field": "customer_id"},
            {"index": 2, "reason": "no such customer", "field": "customer_id"},
        ],
        "warnings": [],
    }
    assert stored(workspace) == [("ok", "Fine", ana.id, "", "")]
    assert rows(other_workspace, Event, "id") == []


def test_when_every_event_is_rejected_the_answer_is_a_400_and_nothing_is_stored(api, workspace):
    response = send(
        api,
        "post",
        EVENTS,
        {
            "events": [
                {"name": "", "external_id": "u1"},
                {"name": "x", "customer_id": "5"},
                "not an object",
                {"name": "x"},
                {"name": "x", "external_id": "u1", "colour": "red"},
                {"name": "x", "external_id": "u1", "properties": [1]},
                {"name": "x" * 201, "external_id": "u1"},
                {"name": "x", "customer_id": True},
                {"name": "x", "customer_id": 2_000_000_000},
            ]
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "no event was accepted; `rejected` gives each one's reason",
        "code": "invalid",
        "accepted": 0,
        "duplicates": 0,
        "rejected": [
            {"index": 0, "reason": "a non-empty event name is required", "field": "name"},
            {"index": 1, "reason": "must be an integer", "field": "customer_id"},
            {"index": 2, "reason": "each event must be a JSON object"},
            {
                "index": 3,
                "reason": "customer_id, external_id or anonymous_id is required",
                "field": "customer_id",
            },
            {"index": 4, "reason": "unknown field", "field": "colour"},
            {"index": 5, "reason": "must be a JSON object", "field": "properties"},
            {"index": 6, "reason": "longer than 200 characters", "field": "name"},
            {"index": 7, "reason": "must be an integer", "field": "customer_id"},
            {"index": 8, "reason": "no such customer", "field": "customer_id"},
        ],
        "warnings": [],
    }
    assert stored(workspace) == []
    assert rows(workspace, Customer, "id") == []


@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        ("yesterday", "must be an ISO 8601 date-time"),
        ("2026-02-30T10:00:00Z", "must be an ISO 8601 date-time"),
        (1730455200, "must be an ISO 8601 date-time"),
        ("1969-12-31T23:59:59Z", "is before 1970"),
    ],
)
def test_an_invalid_occurred_at_rejects_the_event_naming_it(
    api, workspace, ana, occurred_at, reason
):
    response = send(
        api,
        "post",
        EVENTS,
        {
            "events": [
                {"name": "Bad", "customer_id": ana.id, "occurred_at": occurred_at},
                {"name": "Good", "customer_id": ana.id, "message_id": "good"},
            ]
        },
    )

    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [{"index": 0, "reason": reason, "field": "occurred_at"}],
        "warnings": [],
    }
    assert stored(workspace) == [("good", "Good", ana.id, "", "")]


def test_resending_a_message_id_counts_a_duplicate_and_stores_nothing_new(api, workspace, ana):
    body = {"name": "Paid", "customer_id": ana.id, "message_id": "order-881"}
    send(api, "post", EVENTS, body)

    again = send(api, "post", EVENTS, body | {"name": "Changed"})
    twice_in_one = send(
        api,
        "post",
        EVENTS,
        {"events": [body, body | {"message_id": "order-882"}, body | {"message_id": "order-882"}]},
    )

    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 1, **NOTHING_WRONG}
    assert twice_in_one.json() == {"accepted": 1, "duplicates": 2, **NOTHING_WRONG}
    assert stored(workspace) == [
        ("order-881", "Paid", ana.id, "", ""),
        ("order-882", "Paid", ana.id, "", ""),
    ]


def test_up_to_1000_events_per_request(api, workspace):
    events = [{"name": "Bulk", "anonymous_id": "a", "message_id": f"m{i}"} for i in range(1000)]

    response = send(api, "post", EVENTS, {"events": events})

    assert response.json() == {"accepted": 1000, "duplicates": 0, **NOTHING_WRONG}
    assert len(rows(workspace, Event, "id")) == 1000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"events": [{"name": "x", "anonymous_id": "a"}] * 1001},
            "at most 1000 events per request",
        ),
        ({"events": []}, "a non-empty array of events"),
        ({"events": {"name": "x"}}, "a non-empty array of events"),
    ],
)
def test_a_request_that_is_too_big_or_empty_is_a_400(api, workspace, body, message):
    response = send(api, "post", EVENTS, body)

    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid input",
        "code": "invalid",
        "errors": {"events": [message]},
    }
    assert stored(workspace) == []


def test_a_viewer_key_cannot_send_events(workspace, ana):
    viewer = client_with_role(workspace, Role.VIEWER)

    response = send(viewer, "post", EVENTS, {"name": "x", "customer_id": ana.id})

    assert response.status_code == 403
    assert stored(workspace) == []


# -- GET ----------------------------------------------------------------------------------------


@pytest.fixture
def history(workspace, ana):
    """Five events of ana's and one of bob's; e3 and e4 happened at the same time."""
    bob = make_customer(workspace, external_id="bob")
    with workspace_scope(workspace.id):
        for message_id, name, when, customer in [
            ("e1", "Viewed", at(1), ana),
            ("e2", "Paid", at(2), ana),
            ("e3", "Viewed", at(3), ana),
            ("e4", "Viewed", at(3), ana),
            ("e5", "Paid", at(5), ana),
            ("b1", "Viewed", at(4), bob),
        ]:
            Event.objects.create(
                workspace=workspace,
                customer=customer,
                name=name,
                occurred_at=when,
                message_id=message_id,
                source="api",
            )
    return bob


def message_ids(response) -> list[str]:
    return [event["message_id"] for event in response.json()["results"]]


def test_an_event_as_the_api_shows_it(api, workspace, ana):
    send(
        api,
        "post",
        EVENTS,
        {
            "name": "Paid",
            "external_id": "ana",
            "anonymous_id": "a1",
            "properties": {"value": 10},
            "occurred_at": "2026-11-01T10:00:00Z",
            "message_id": "e",
        },
    )
    event = get(workspace, Event, message_id="e")

    response = api.get(EVENTS)

    assert response.json()["results"] == [
        {
            "id": event.id,
            "type": "track",
            "name": "Paid",
            "properties": {"value": 10},
            "occurred_at": "2026-11-01T10:00:00Z",
            "received_at": drf_time(event.received_at),
            "message_id": "e",
            "customer_id": ana.id,
            "user_id": "ana",
            "anonymous_id": "a1",
            "context": {},
            "source": "api",
        }
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["e5", "b1", "e4", "e3", "e2", "e1"]),
        ({"name": "Viewed"}, ["b1", "e4", "e3", "e1"]),
        ({"name": "Nothing"}, []),
        ({"since": "2026-11-03T00:00:00Z"}, ["e5", "b1", "e4", "e3"]),
        ({"name": "Paid", "since": "2026-11-02T00:00:01Z"}, ["e5"]),
    ],
)
def test_the_events_list_filters_newest_first(api, history, params, expected):
    response = api.get(EVENTS, params)
    assert response.status_code == 200
    assert message_ids(response) == expected


def test_since_with_an_offset_postgresql_refuses_is_read_in_utc(api, history):
    response = api.get(EVENTS, {"since": "0054-09-16T03:33:12-22:34"})
    assert response.status_code == 200
    assert message_ids(response) == ["e5", "b1", "e4", "e3", "e2", "e1"]


@pytest.mark.parametrize(
    "since", ["last week", "2026-11-31T00:00:00Z", "0001-01-01T00:00:00+01:00"]
)
def test_an_invalid_since_is_a_400(api, history, since):
    response = api.get(EVENTS, {"since": since})
    assert response.status_code == 400
    assert response.json()["errors"] == {"since": ["must be an ISO 8601 date-time"]}


@pytest.mark.parametrize("since", ["2026-11-03T00:00:00", "2026-11-03 00:00"])
def test_a_since_without_a_time_zone_is_a_400(api, history, since):
    response = api.get(EVENTS, {"since": since})
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "since": ["must be an ISO 8601 date-time with a time zone (Z or ±hh:mm)"]
    }


def test_the_events_list_pages_with_a_cursor(api, history):
    pages, url, params = [], EVENTS, {"name": "Viewed", "limit": 3}
    while url:
        response = api.get(url, params)
        pages.append(message_ids(response))
        url, params = response.json()["next"], None

    assert pages == [["b1", "e4", "e3"], ["e1"]]


def test_a_customers_events_newest_first_with_a_cursor(api, workspace, ana, history):
    url = f"/api/v1/customers/{ana.id}/events"

    first = api.get(url, {"limit": 2})
    second = api.get(first.json()["next"])
    third = api.get(second.json()["next"])

    assert [message_ids(first), message_ids(second), message_ids(third)] == [
        ["e5", "e4"],
        ["e3", "e2"],
        ["e1"],
    ]
    assert first.json()["previous"] is None
    assert third.json()["next"] is None
    assert message_ids(api.get(third.json()["previous"])) == ["e3", "e2"]


def test_a_customers_events_are_only_theirs(api, history):
    bob = history
    response = api.get(f"/api/v1/customers/{bob.id}/events")
    assert message_ids(response) == ["b1"]


def test_another_workspaces_customer_has_no_events_here(api, other_workspace):
    foreign = make_customer(other_workspace, external_id="theirs")
    response = api.get(f"/api/v1/customers/{foreign.id}/events")
    assert response.status_code == 404


@pytest.mark.parametrize("count", [1, 30])
def test_the_events_list_runs_a_fixed_number_of_queries(
    api, workspace, ana, django_assert_max_num_queries, count
):
    now = timezone.now()
    with workspace_scope(workspace.id):
        Event.objects.bulk_create(
            Event(
                workspace=workspace,
                customer=ana,
                name="Viewed",
                occurred_at=now - timedelta(minutes=i),
                message_id=f"m{i}",
                source="api",
            )
            for i in range(count)
        )

    # The key lookup, its last-used stamp (at most once a minute), and one page of events.
    with django_assert_max_num_queries(3):
        response = api.get(EVENTS)

    assert len(response.json()["results"]) == count
