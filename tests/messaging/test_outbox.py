"""messaging.outbox: the only writer of messages. One customer (idempotent on the dedupe key)
and a whole source in one INSERT … SELECT, each with the policy's decision and history."""

import datetime
import hashlib
from datetime import UTC

import pytest

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import Conflict, InvalidInput
from messaging import outbox
from messaging.models import Message, MessageStatusChange
from tests.factories import CampaignFactory, CustomerFactory
from tests.messaging.test_policy_support import (
    AT,
    make_template,
    set_policy,
    set_regime,
    suppress,
)

pytestmark = pytest.mark.django_db

GRANTED = {"email_marketing": {"status": "granted"}}


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield


def enqueue(customer, key="k1", **kwargs):
    arguments = {"channel": "email", "kind": "marketing", "dedupe_key": key,
                 "origin": {"source": "test"}, "at": AT} | kwargs  # fmt: skip
    return outbox.message_enqueue(customer=customer, **arguments)


def history(message):
    return list(
        MessageStatusChange.objects.filter(message=message).values_list("status", "detail", "at")
    )


def test_a_message_records_the_decision_the_newest_version_and_its_first_status(
    workspace, scope, django_capture_on_commit_callbacks
):
    template = make_template(workspace, versions=2)
    ana = CustomerFactory(workspace=workspace, email="ana@example.com", consent=GRANTED)

    with django_capture_on_commit_callbacks() as callbacks:
        enqueued = enqueue(ana, template=template, render_input={"event": {"order": 7}})

    message = enqueued.message
    assert enqueued.is_new is True
    assert enqueued.decision.code == "ok"
    assert Message.objects.filter(id=message.id).values(
        "status", "decision", "decision_code", "address", "due_at", "template_version__number",
        "render_input", "origin", "dedupe_key",
    ).get() == {
        "status": "queued", "decision": "queued", "decision_code": "ok",
        "address": "ana@example.com", "due_at": AT, "template_version__number": 2,
        "render_input": {"event": {"order": 7}}, "origin": {"source": "test"},
        "dedupe_key": "k1",
    }  # fmt: skip
    assert history(message) == [("queued", "queued", AT)]
    assert len(callbacks) == 1  # the sender's wake-up, after commit


def test_the_same_dedupe_key_returns_the_existing_message(workspace, scope):
    ana = CustomerFactory(workspace=workspace, email="ana@example.com", consent=GRANTED)
    first = enqueue(ana)

    again = enqueue(ana, kind="transactional", at=AT + datetime.timedelta(hours=1))

    assert (again.is_new, again.message.id, again.decision) == (False, first.message.id,
                                                                first.decision)  # fmt: skip
    assert Message.objects.count() == 1
    assert MessageStatusChange.objects.count() == 1


def test_a_suppressed_message_is_recorded_and_wakes_nobody(
    workspace, scope, django_capture_on_commit_callbacks
):
    ana = CustomerFactory(workspace=workspace, email="ana@example.com", consent={})

    with django_capture_on_commit_callbacks() as callbacks:
        enqueued = enqueue(ana)

    assert (enqueued.message.status, enqueued.message.decision) == (
        "suppressed", "suppressed: no consent",
    )  # fmt: skip
    assert history(enqueued.message) == [("suppressed", "suppressed: no consent", AT)]
    assert callbacks == []


def test_a_deferred_message_is_due_at_the_end_of_quiet_hours(workspace, scope):
    set_policy(workspace, quiet_hours_enabled=True, quiet_hours_channels=["email"])
    ana = CustomerFactory(workspace=workspace, email="ana@example.com", consent=GRANTED,
                          timezone="America/Mexico_City")  # fmt: skip
    night = datetime.datetime(2026, 6, 16, 4, 30, tzinfo=UTC)  # 22:30 in Mexico City

    message = enqueue(ana, at=night).message

    assert (message.status, message.due_at, message.decision) == (
        "deferred", datetime.datetime(2026, 6, 16, 14, 0, tzinfo=UTC),
        "deferred: quiet hours until 08:00 America/Mexico_City",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("template_kwargs", "error"),
    [
        ({"channel": "push"}, "the template is for push, not email"),
        ({"versions": 0}, "the template has no version to send"),
    ],
)
def test_a_template_that_cannot_be_sent_is_refused(workspace, scope, template_kwargs, error):
    template = make_template(workspace, **template_kwargs)
    ana = CustomerFactory(workspace=workspace, consent=GRANTED)

    with pytest.raises(InvalidInput) as raised:
        enqueue(ana, template=template)

    assert (raised.value.field, raised.value.message) == ("template_id", error)
    assert Message.objects.count() == 0


def test_an_archived_template_is_refused(workspace, scope):
    template = make_template(workspace)
    template.is_archived = True
    template.save()

    with pytest.raises(InvalidInput, match="archived"):
        enqueue(CustomerFactory(workspace=workspace), template=template)


def source(customers):
    return {
        "source_sql": "SELECT unnest(%(ids)s::bigint[]) AS customer_id",
        "source_params": {"ids": [customer.id for customer in customers]},
    }


def test_an_audience_is_enqueued_in_one_statement_with_each_decision(
    workspace, other_workspace, scope, django_capture_on_commit_callbacks, django_assert_num_queries
):
    template = make_template(workspace)
    ok = [CustomerFactory(workspace=workspace, consent=GRANTED) for _ in range(3)]
    no_consent = CustomerFactory(workspace=workspace, consent={})
    no_email = CustomerFactory(workspace=workspace, email=None, consent=GRANTED)
    bounced = CustomerFactory(workspace=workspace, email="gone@example.com", consent=GRANTED)
    suppress(workspace, "email", "gone@example.com", "hard_bounce")
    with workspace_scope(other_workspace.id):
        foreign = CustomerFactory(workspace=other_workspace, consent=GRANTED)
    everyone = [*ok, no_consent, no_email, bounced, foreign]
    campaign = CampaignFactory(workspace=workspace)
    origin = {"source": "campaign", "campaign": campaign.id}
    arguments = {"workspace": workspace, "channel": "email", "kind": "marketing",
                 "dedupe_key_prefix": "campaign:5:", "origin": origin, "campaign": campaign,
                 "template": template, "at": AT, **source(everyone)}  # fmt: skip
    set_policy(workspace)
    set_regime(workspace, "opt_in")
    # The template's newest version, the regime, the policy; JIT off and the statement in a
    # savepoint.
    with django_capture_on_commit_callbacks() as callbacks, django_assert_num_queries(7):
        counts = outbox.messages_enqueue_from_sql(**arguments)

    assert counts == outbox.EnqueuedCounts(
        by_code={"ok": 3, "no_consent": 1, "no_address": 1, "suppressed": 1}, already_existing=0
    )
    assert len(callbacks) == 1
    rows = {
        row["customer_id"]: row
        for row in Message.objects.values(
            "customer_id", "dedupe_key", "status", "decision", "address", "origin", "campaign_id",
            "template_version__number", "due_at", "created_at",
        )
    }  # fmt: skip
    assert sorted(rows) == sorted(c.id for c in [*ok, no_consent, no_email, bounced])
    assert rows[bounced.id] == {
        "customer_id": bounced.id, "dedupe_key": f"campaign:5:{bounced.id}",
        "status": "suppressed", "decision": "suppressed: hard bounce",
        "address": "gone@example.com", "origin": origin, "campaign_id": campaign.id,
        "template_version__number": 1, "due_at": AT, "created_at": AT,
    }  # fmt: skip
    assert rows[no_email.id]["decision"] == "suppressed: no email address"
    assert sorted(MessageStatusChange.objects.values_list("message__customer_id", "status")) == (
        sorted((customer_id, row["status"]) for customer_id, row in rows.items())
    )

    again = outbox.messages_enqueue_from_sql(**arguments)

    assert again == outbox.EnqueuedCounts(by_code={}, already_existing=6)
    assert Message.objects.count() == 6


def test_the_policy_decides_in_sql_as_for_one_customer(workspace, scope):
    """The set-based enqueue and message_enqueue record the same decision for a customer."""
    set_policy(workspace, frequency_caps=[{"channel": "*", "limit": 1, "window_hours": 24}])
    capped = CustomerFactory(workspace=workspace, consent=GRANTED)
    enqueue(capped, key="earlier")
    Message.objects.update(status="sent", sent_at=AT - datetime.timedelta(hours=1))

    one = enqueue(capped, key="one").message
    counts = outbox.messages_enqueue_from_sql(
        workspace=workspace, channel="email", kind="marketing", dedupe_key_prefix="set:",
        origin={}, at=AT, **source([capped]),
    )  # fmt: skip

    in_set = Message.objects.get(dedupe_key=f"set:{capped.id}")
    assert counts.by_code == {"frequency_cap": 1}
    assert (in_set.decision, in_set.status) == (one.decision, one.status)
    assert one.decision == "suppressed: frequency cap 1 per 24 h (all channels)"


def test_a_source_parameter_may_not_take_the_policys_names(workspace, scope):
    with pytest.raises(ValueError, match="_policy_"):
        outbox.messages_enqueue_from_sql(
            workspace=workspace, channel="email", kind="marketing", dedupe_key_prefix="x:",
            origin={}, source_sql="SELECT %(_policy_0)s AS customer_id",
            source_params={"_policy_0": 1},
        )  # fmt: skip


LONG_KEY = "k" * 252


@pytest.mark.parametrize(
    ("key", "dedupe_key"),
    [
        ("order-7", "api:order-7"),
        ("k" * 251, "api:" + "k" * 251),
        (LONG_KEY, "api:#" + hashlib.sha256(LONG_KEY.encode()).hexdigest()),
    ],
)
def test_api_dedupe_keys(key, dedupe_key):
    assert outbox.api_dedupe_key(key) == dedupe_key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "the Idempotency-Key header is required"),
        ("  ", "the Idempotency-Key header is required"),
        ("k" * 256, "at most 255 characters"),
        ("a\x00b", "must not contain NUL characters"),
    ],
)
def test_bad_idempotency_keys(key, message):
    with pytest.raises(InvalidInput) as raised:
        outbox.api_dedupe_key(key)

    assert (raised.value.field, raised.value.message) == ("Idempotency-Key", message)


def test_the_same_key_for_another_request_is_a_conflict_naming_what_differs(workspace, scope):
    template = make_template(workspace)
    other = make_template(workspace)
    ana = CustomerFactory(workspace=workspace, consent=GRANTED)
    arguments = {"customer": ana, "channel": "email", "kind": "transactional",
                 "template": template, "event": {"order": 7}, "idempotency_key": "k"}  # fmt: skip
    first = outbox.message_send(**arguments)

    same = outbox.message_send(**arguments)
    with pytest.raises(Conflict) as raised:
        outbox.message_send(**arguments | {"template": other, "event": {"order": 8}})

    assert (same.is_new, same.message.id) == (False, first.message.id)
    assert raised.value.message == (
        "this Idempotency-Key was used for another request (its template_id, event differ); "
        "use a new key for a new message"
    )
    assert Message.objects.count() == 1
