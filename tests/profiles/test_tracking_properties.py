"""Property tests of the tracking API: whatever JSON arrives, the answer is never a 5xx, and every
message that follows the spec is stored, however much junk surrounds it.

Examples share one test transaction, so every example uses fresh message ids; the deferred
foreign keys are checked after each example so a dangling reference fails the example that made
it. The regressions below the property tests are the inputs these tests (or reading the code
while writing them) found.
"""

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masivo.tenancy.context import workspace_scope
from profiles.models import Customer, Event
from tests.profiles.helpers import get, rows

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any code point, lone surrogates included (JSON can carry them as "\ud800" escapes).
CHARACTERS = st.characters(exclude_categories=())
NOTABLE_TEXT = ["", " ", "\x00", "a\x00b", "ñandú", "🎉", "\ud800", "\udc00x", "null", "Infinity"]
TEXT = st.text(CHARACTERS, max_size=12) | st.sampled_from(NOTABLE_TEXT)
# Keys the code gives meaning to, so that random objects sometimes hit them.
NOTABLE_KEYS = [
    "masivo", "locale", "email", "name", "address", "country", "city", "phone", "birthday",
    "gender", "firstName", "timezone", "tier", "page", "ip", "userAgent", "library",
]  # fmt: skip
KEYS = TEXT | st.sampled_from(NOTABLE_KEYS)
SEGMENT_TYPES = ["identify", "track", "page", "screen", "group", "alias"]


def scalars(*, finite: bool):
    return (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=not finite)
        | TEXT
    )


def json_values(*, finite: bool):
    return st.recursive(
        scalars(finite=finite),
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3)
        ),
        max_leaves=8,
    )


def nesting(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    return 0


ANY = json_values(finite=False)
# What a valid message may carry in its free-form objects: finite numbers, at most 10 levels.
OBJECTS = st.dictionaries(KEYS, json_values(finite=True), max_size=4).filter(
    lambda value: nesting(value) <= 10
)
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
VALID_TIMES = (
    st.none()
    | st.just("")
    | st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=ZONES
    ).map(datetime.isoformat)
)
ODD_TIMES = st.sampled_from(
    [
        "2026-02-30T10:00:00Z",
        "2026-11-01T25:00:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2026-11-01",
        "yesterday",
    ]
) | st.datetimes(timezones=ZONES).map(datetime.isoformat)
ANY_TIME = ODD_TIMES | VALID_TIMES | ANY
IDS = TEXT.filter(lambda text: text.replace("\x00", "").strip())


def stored_form(text: str) -> str:
    """How a spec-following id or name is stored: NULs removed, lone surrogates as U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text.replace("\x00", "")).strip()


# Extra keys a valid message may carry without ceasing to be valid.
VALID_EXTRAS = st.fixed_dictionaries(
    {},
    optional={
        "properties": st.none() | OBJECTS,
        "traits": st.none() | OBJECTS,
        "context": st.none() | OBJECTS,
        "anonymousId": st.none() | TEXT,
        "timestamp": VALID_TIMES,
        "sentAt": VALID_TIMES,
        "integrations": ANY,
        "category": ANY,
        "version": ANY,
        "name": st.none() | TEXT,
    },
)


@st.composite
def valid_messages(draw, kinds=("track", "identify", "page", "screen")):
    """A message that follows the spec; its messageId is set by the test, fresh each time."""
    kind = draw(st.sampled_from(kinds))
    message = draw(VALID_EXTRAS) | {"type": kind, "userId": draw(IDS)}
    if kind == "track":
        message["event"] = draw(IDS)
    return message


JUNK_MESSAGES = ANY | st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(SEGMENT_TYPES) | ANY,
        "userId": IDS | ANY,
        "anonymousId": TEXT | ANY,
        "previousId": TEXT | ANY,
        "groupId": ANY,
        "event": TEXT | ANY,
        "name": ANY,
        "messageId": ANY,
        "properties": OBJECTS | ANY,
        "traits": OBJECTS | ANY,
        "context": OBJECTS | ANY,
        "timestamp": ANY_TIME,
        "sentAt": ANY_TIME,
    },
)


def check_deferred_constraints() -> None:
    """Foreign keys are deferred to commit; the test's transaction never commits."""
    connection.check_constraints()


NAMES = {"identify": "Identify", "page": "Page Viewed", "screen": "Screen Viewed"}


def assert_stored(workspace, messages: list[dict]) -> None:
    """Each message is stored once, under its own id, with its type, name and user id."""
    with workspace_scope(workspace.id):
        found = list(
            Event.objects.filter(message_id__in=[m["messageId"] for m in messages])
            .order_by("message_id")
            .values_list("message_id", "type", "name", "user_id")
        )
    assert found == sorted(
        (
            m["messageId"],
            m["type"],
            NAMES.get(m["type"]) or stored_form(m["event"]),
            stored_form(m["userId"]),
        )
        for m in messages
    )


@FUZZ
@given(
    valid=st.lists(valid_messages(), max_size=4),
    junk=st.lists(JUNK_MESSAGES, max_size=5),
    batch_context=st.none() | OBJECTS,
    order=st.randoms(use_true_random=False),
)
def test_a_batch_never_fails_and_stores_every_valid_message(
    tracking, workspace, valid, junk, batch_context, order
):
    for message in valid:
        message["messageId"] = f"valid-{uuid.uuid4()}"
    batch = valid + junk
    order.shuffle(batch)
    body = {"batch": batch} if batch_context is None else {"batch": batch, "context": batch_context}

    response = tracking.post("batch", body)

    assert response.status_code < 500
    assert response.status_code == 200 or not valid
    check_deferred_constraints()
    assert_stored(workspace, valid)


# Keys the parser reads: noise must not replace them.
READ_KEYS = {
    "type", "userId", "event", "messageId", "properties", "traits", "context", "anonymousId",
    "timestamp", "sentAt", "name", "previousId", "groupId", "writeKey",
}  # fmt: skip


@FUZZ
@given(message=valid_messages(kinds=("track",)), noise=st.dictionaries(KEYS, ANY, max_size=3))
def test_a_valid_track_call_is_stored_whatever_unknown_keys_it_carries(
    tracking, workspace, message, noise
):
    message |= {key: value for key, value in noise.items() if key not in READ_KEYS}
    message["messageId"] = f"valid-{uuid.uuid4()}"

    response = tracking.post("track", message)

    assert response.status_code == 200
    check_deferred_constraints()
    assert_stored(workspace, [message])


@FUZZ
@given(
    path=st.sampled_from(["batch", "track", "identify", "page", "alias", "group"]),
    body=ANY | st.fixed_dictionaries({}, optional={"batch": ANY, "context": ANY}) | JUNK_MESSAGES,
)
def test_any_json_body_answers_below_500(tracking, path, body):
    response = tracking.post(path, body)

    assert response.status_code < 500
    check_deferred_constraints()


@FUZZ
@given(raw=st.binary(max_size=64) | TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_any_bytes_answer_below_500(tracking, raw):
    response = tracking.post("batch", None, raw=raw)
    assert response.status_code < 500


# -- regressions ----------------------------------------------------------------------------------


def test_lone_surrogates_are_stored_as_replacement_characters(tracking, workspace):
    raw = (
        b'{"userId": "u\\ud800", "event": "E\\udc00", "messageId": "m\\ud800",'
        b' "properties": {"k\\ud800": "v\\udfff"}}'
    )

    response = tracking.post("track", None, raw=raw)

    assert response.status_code == 200
    event = get(workspace, Event)
    assert (event.user_id, event.name, event.message_id, event.properties) == (
        "u\ufffd",
        "E\ufffd",
        "m\ufffd",
        {"k\ufffd": "v\ufffd"},
    )


def test_a_rejected_message_id_with_a_lone_surrogate_is_echoed_safely(tracking, workspace):
    response = tracking.post("track", None, raw=b'{"userId": "u1", "messageId": "m\\ud800"}')

    assert response.status_code == 400
    assert response.json()["rejected"] == [
        {
            "index": 0,
            "reason": "track needs an event name",
            "field": "event",
            "messageId": "m\ufffd",
        }
    ]
    assert rows(workspace, Event, "id") == []


@pytest.mark.parametrize("field", ["timestamp", "sentAt"])
def test_an_impossible_date_rejects_the_message(tracking, workspace, field):
    response = tracking.post("track", {"userId": "u1", "event": "E", field: "2026-02-30T10:00:00Z"})

    assert response.status_code == 400
    assert response.json()["errors"] == {field: ["must be an ISO 8601 date-time"]}
    assert rows(workspace, Event, "id") == []


@pytest.mark.parametrize(
    ("timestamp", "sent_at"),
    [
        ("9999-12-31T00:00:00Z", "1971-01-01T00:00:00Z"),
        ("1971-01-01T00:00:00Z", "9999-12-31T00:00:00Z"),
    ],
)
def test_a_clock_skew_beyond_the_calendar_rejects_the_message(
    tracking, workspace, timestamp, sent_at
):
    response = tracking.post(
        "track", {"userId": "u1", "event": "E", "timestamp": timestamp, "sentAt": sent_at}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"sentAt": ["too far from the time it was received"]}
    assert rows(workspace, Event, "id") == []


@pytest.mark.parametrize("masivo", [1, "x", [1], None])
def test_a_client_masivo_context_key_that_is_not_an_object_is_replaced(tracking, workspace, masivo):
    response = tracking.post(
        "track",
        {
            "userId": "u1",
            "event": "E",
            "timestamp": "2999-01-01T00:00:00Z",
            "context": {"masivo": masivo},
        },
    )

    assert response.status_code == 200
    assert get(workspace, Event).context["masivo"] == {"original_timestamp": "2999-01-01T00:00:00Z"}


def test_each_message_keeps_its_own_original_timestamp(tracking, workspace):
    tracking.post(
        "batch",
        {
            "context": {"masivo": {"kept": True}},
            "batch": [
                {"type": "track", "userId": "u1", "event": "A", "messageId": "a",
                 "timestamp": "2999-01-01T00:00:00Z"},
                {"type": "track", "userId": "u1", "event": "B", "messageId": "b",
                 "timestamp": "2998-01-01T00:00:00Z"},
            ],
        },
    )  # fmt: skip

    assert rows(workspace, Event, "message_id", "context__masivo") == [
        ("a", {"kept": True, "original_timestamp": "2999-01-01T00:00:00Z"}),
        ("b", {"kept": True, "original_timestamp": "2998-01-01T00:00:00Z"}),
    ]


LONG_EMAIL = "a" * 64 + "." + "b" * 60 + "." + "c" * 60 + "@" + "d" * 60 + ".example.com"
LONG_LOCALE = "es" + "-abcdefgh" * 5


@pytest.mark.parametrize(
    ("trait", "value", "warning"),
    [
        ("email", LONG_EMAIL, "traits.email: longer than 254 characters"),
        ("locale", LONG_LOCALE, f"traits.locale: {LONG_LOCALE!r} is not a locale like 'es-MX'"),
    ],
)
def test_a_reserved_trait_longer_than_its_column_is_kept_as_a_trait(
    tracking, workspace, trait, value, warning
):
    response = tracking.post("identify", {"userId": "u1", "traits": {trait: value}})

    assert response.json()["warnings"] == [f"message 0: {warning} (kept as a plain trait)"]
    customer = get(workspace, Customer, external_id="u1")
    assert (customer.email, customer.locale, customer.traits) == (None, "", {trait: value})
