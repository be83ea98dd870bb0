"""Campaigns (messaging.campaigns): validation, the start's set-based snapshot (exclusions,
A/B split, decisions, a second run adding nothing, the claim), throttle and local-time due
times, pause / resume / cancel, completion by the tick, progress, stats, the estimate and a
send to a push topic against the FCM fake."""

import datetime
from datetime import UTC

import pytest
from django.db import connection

from audiences.models import Membership
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.roles import Role
from messaging import campaigns as c
from messaging.models import (
    AudienceTopic,
    Campaign,
    Message,
    MessageStatusChange,
    Template,
    TemplateVersion,
)
from profiles.models import Event
from tests.factories import AudienceFactory, CustomerFactory
from tests.messaging.helpers import ADMIN, connect
from tests.messaging.test_policy_support import make_template, set_policy, set_regime

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 6, 15, 15, 0, tzinfo=UTC)
GRANTED = {"email_marketing": {"status": "granted"}}
VIEWER = Actor(role=Role.VIEWER, user_id=2)


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        set_regime(workspace, "opt_in")
        yield


def members(workspace, audience, count, **fields):
    customers = [
        CustomerFactory(workspace=workspace, consent=GRANTED, **fields) for _ in range(count)
    ]
    join(workspace, audience, *customers)
    return customers


def join(workspace, audience, *customers):
    for customer in customers:
        Membership.objects.create(
            workspace=workspace, audience=audience, customer=customer, source="api"
        )


def create(workspace, template, audiences, **values):
    values = {
        "name": "Summer sale",
        "channel": template.channel,
        "audience_ids": [a.id for a in audiences],
        "template_id": template.id,
    } | values
    return c.campaign_create(workspace=workspace, values=values, actor=ADMIN)


def start_now(campaign, now=NOW):
    c.campaign_send_now(campaign=campaign, actor=ADMIN, now=now)
    return c.campaign_start(campaign_id=campaign.id, now=now)


def statuses(campaign):
    return dict(c.campaign_progress(campaign).by_status)


# --------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": ""}, "name", "a name of 1 to 200 characters"),
        ({"channel": "fax"}, "channel", "one of email, push, whatsapp, sms, in_app"),
        ({"audience_ids": []}, "audience_ids", "at least one audience"),
        ({"audience_ids": [999999]}, "audience_ids", "no audience 999999 in this workspace"),
        ({"excluded_audience_ids": ["x"]}, "excluded_audience_ids", "a list of audience ids"),
        ({"variants": [], "template_id": None}, "variants", "at least one variant (a template)"),
        (
            {"template_id": 999999},
            "variants[0].template_id",
            "no template 999999 in this workspace",
        ),
        ({"channel": "sms"}, "variants[0].template_id", "the template is for email, not sms"),
        (
            {"local_date": datetime.date(2026, 7, 1)},
            "local_time",
            "a local send needs both local_date and local_time",
        ),
        ({"throttle_per_minute": 0}, "throttle_per_minute", "at least 1 message a minute"),
        ({"send_to_topic": True}, "send_to_topic", "only a push campaign can send to a topic"),
        (
            {"send_at": datetime.datetime(2026, 7, 1, 9, 0)},
            "send_at",
            "an instant with its UTC offset",
        ),
    ],
)
def test_a_campaign_is_refused_naming_the_field(workspace, scope, change, field, message):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)

    with pytest.raises(InvalidInput) as error:
        create(workspace, template, [audience], **change)

    assert (error.value.field, error.value.message) == (field, message)
    assert Campaign.objects.count() == 0


def test_variant_weights_must_sum_to_100_and_templates_share_the_channel(workspace, scope):
    email_a, email_b = make_template(workspace), make_template(workspace)
    push = make_template(workspace, "push")
    audience = AudienceFactory(workspace=workspace)
    variants = [{"name": "A", "template_id": email_a.id, "weight": 50},
                {"name": "B", "template_id": email_b.id, "weight": 40}]  # fmt: skip

    with pytest.raises(InvalidInput) as error:
        create(workspace, email_a, [audience], variants=variants, template_id=None)
    assert (error.value.field, error.value.message) == (
        "variants", "the weights must sum to 100, not 90",
    )  # fmt: skip

    variants[1] |= {"template_id": push.id, "weight": 50}
    with pytest.raises(InvalidInput) as error:
        create(workspace, email_a, [audience], variants=variants, template_id=None)
    assert (error.value.field, error.value.message) == (
        "variants[1].template_id", "the template is for push, not email",
    )  # fmt: skip


def test_a_topic_send_needs_one_audience_with_a_push_topic(workspace, scope):
    push = make_template(workspace, "push")
    audience, other = AudienceFactory(workspace=workspace), AudienceFactory(workspace=workspace)

    with pytest.raises(InvalidInput) as error:
        create(workspace, push, [audience, other], send_to_topic=True)
    assert error.value.message == "a topic send goes to exactly one audience, without exclusions"
    with pytest.raises(InvalidInput) as error:
        create(workspace, push, [audience], send_to_topic=True)
    assert error.value.message == f"audience {audience.id} has no push topic (make one first)"

    AudienceTopic.objects.create(workspace=workspace, audience_id=audience.id, topic="t")
    assert create(workspace, push, [audience], send_to_topic=True).send_to_topic is True


def test_an_audience_both_included_and_excluded_is_refused(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)

    with pytest.raises(InvalidInput) as error:
        create(workspace, template, [audience], excluded_audience_ids=[audience.id])

    assert (error.value.field, error.value.message) == (
        "excluded_audience_ids", f"audience {audience.id} is both included and excluded",
    )  # fmt: skip


def test_only_drafts_are_edited_or_deleted_and_only_by_marketers(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    campaign = create(workspace, template, [audience])

    with pytest.raises(NotAllowed):
        c.campaign_update(campaign=campaign, values={"name": "x"}, actor=VIEWER)
    updated = c.campaign_update(
        campaign=campaign, values={"name": " Winter ", "throttle_per_minute": 10}, actor=ADMIN
    )
    assert (updated.name, updated.throttle_per_minute, updated.variants) == (
        "Winter", 10, [{"name": "A", "template_id": template.id, "weight": 100}],
    )  # fmt: skip

    c.campaign_send_now(campaign=campaign, actor=ADMIN, now=NOW)
    with pytest.raises(Conflict) as error:
        c.campaign_update(campaign=campaign, values={"name": "y"}, actor=ADMIN)
    assert error.value.message == ("the campaign is scheduled; only a draft campaign can be edited")
    with pytest.raises(Conflict) as error:
        c.campaign_delete(campaign=campaign, actor=ADMIN)
    assert error.value.message == (
        "the campaign is scheduled; only a draft campaign can be deleted"
    )

    draft = create(workspace, template, [audience])
    c.campaign_delete(campaign=draft, actor=ADMIN)
    assert not Campaign.objects.filter(id=draft.id).exists()


# --------------------------------------------------------------------------------------------
# The start


def test_the_start_makes_one_message_per_recipient_minus_exclusions_with_decisions(
    workspace, other_workspace, scope
):
    template = make_template(workspace)
    vip, buyers, blocked = (AudienceFactory(workspace=workspace) for _ in range(3))
    both = members(workspace, vip, 2)
    join(workspace, buyers, *both)  # in two included audiences: one message
    only_buyers = members(workspace, buyers, 1)
    no_consent = CustomerFactory(workspace=workspace, consent={})
    no_email = CustomerFactory(workspace=workspace, email=None, consent=GRANTED)
    join(workspace, vip, no_consent, no_email)
    excluded = members(workspace, vip, 2)
    join(workspace, blocked, *excluded)
    campaign = create(workspace, template, [vip, buyers], excluded_audience_ids=[blocked.id])

    started = start_now(campaign)

    assert started == c.Started(
        started=True, created={"ok": 3, "no_consent": 1, "no_address": 1}, already_existing=0
    )
    rows = {m["customer_id"]: m for m in Message.objects.values(
        "customer_id", "dedupe_key", "campaign_id", "status", "decision", "origin", "due_at",
        "template_id",
    )}  # fmt: skip
    expected_ids = {x.id for x in [*both, *only_buyers, no_consent, no_email]}
    assert set(rows) == expected_ids
    ana = both[0]
    assert rows[ana.id] == {
        "customer_id": ana.id, "dedupe_key": f"campaign:{campaign.id}:{ana.id}",
        "campaign_id": campaign.id, "status": "queued", "decision": "queued",
        "origin": {"source": "campaign", "campaign": campaign.id, "variant": "A"},
        "due_at": NOW, "template_id": template.id,
    }  # fmt: skip
    assert rows[no_consent.id]["decision"] == "suppressed: no consent"
    campaign.refresh_from_db()
    assert (campaign.status, campaign.recipients, campaign.decision_counts,
            campaign.started_at, campaign.snapshotted_at) == (
        "sending", 5, {"no_address": 1, "no_consent": 1, "ok": 3}, NOW, NOW,
    )  # fmt: skip
    assert c.campaign_progress(campaign).groups == {
        "queued": 3, "deferred": 0, "paused": 0, "sent": 0, "failed": 0, "suppressed": 2,
        "canceled": 0,
    }  # fmt: skip


def test_a_start_is_claimed_once_and_a_crashed_one_runs_again_adding_nothing(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    members(workspace, audience, 3)
    campaign = create(workspace, template, [audience])
    c.campaign_send_now(campaign=campaign, actor=ADMIN, now=NOW)

    assert c.campaign_claim_start(campaign_id=campaign.id, now=NOW) is True
    assert c.campaign_claim_start(campaign_id=campaign.id, now=NOW) is False  # the other worker
    # The first start crashed after its claim: nothing snapshotted. Within the lease nobody
    # takes it; after it, the tick does, and the snapshot is made.
    assert c.campaign_start(campaign_id=campaign.id, now=NOW + c.START_LEASE) == c.Started(False)
    later = NOW + c.START_LEASE + datetime.timedelta(seconds=1)
    assert c.campaigns_tick(now=later)["start"] == [(workspace.id, campaign.id)]
    assert c.campaign_start(campaign_id=campaign.id, now=later).created == {"ok": 3}

    # A snapshot that did commit is never made again, whatever the lease says.
    Campaign.objects.filter(id=campaign.id).update(snapshotted_at=None, updated_at=NOW)
    again = c.campaign_start(campaign_id=campaign.id, now=later + c.START_LEASE * 2)
    assert again == c.Started(started=True, created={}, already_existing=3)
    assert Message.objects.count() == 3
    assert MessageStatusChange.objects.count() == 3


def test_variants_split_the_recipients_by_a_fixed_hash_of_their_id(workspace, scope):
    a, b = make_template(workspace), make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    customers = members(workspace, audience, 40)
    variants = [{"name": "A", "template_id": a.id, "weight": 30},
                {"name": "B", "template_id": b.id, "weight": 70}]  # fmt: skip
    campaign = create(workspace, a, [audience], variants=variants, template_id=None)

    start_now(campaign)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, abs(hashtext(id::text)::bigint) %% 100 FROM profiles_customer "
            "WHERE id = ANY(%s)",
            [[x.id for x in customers]],
        )
        bucket = dict(cursor.fetchall())
    got = {m.customer_id: (m.origin["variant"], m.template_id) for m in Message.objects.all()}
    assert got == {
        customer_id: ("A", a.id) if value < 30 else ("B", b.id)
        for customer_id, value in bucket.items()
    }
    assert {"A", "B"} == {variant for variant, _ in got.values()}


def test_a_throttle_spreads_the_due_times(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    customers = members(workspace, audience, 4)
    CustomerFactory(workspace=workspace, consent={})  # not a member
    suppressed = CustomerFactory(workspace=workspace, consent={})
    join(workspace, audience, suppressed)
    campaign = create(workspace, template, [audience], throttle_per_minute=120)

    start_now(campaign)

    due = dict(Message.objects.values_list("customer_id", "due_at"))
    ordered = sorted(x.id for x in customers)
    assert [due[i] for i in ordered] == [
        NOW + datetime.timedelta(seconds=0.5 * n) for n in range(4)
    ]
    assert due[suppressed.id] == NOW


def test_a_local_time_is_each_customers_wall_clock_time(workspace, scope):
    workspace.timezone = "Europe/Madrid"
    workspace.save()
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    mexico, tokyo, unknown, nobody = (
        members(workspace, audience, 1, timezone=zone)[0]
        for zone in ("America/Mexico_City", "Asia/Tokyo", "Mars/Olympus", "")
    )
    campaign = create(
        workspace, template, [audience],
        local_date=datetime.date(2026, 6, 16), local_time=datetime.time(9, 0),
    )  # fmt: skip
    now = datetime.datetime(2026, 6, 16, 2, 0, tzinfo=UTC)  # 11:00 in Tokyo: passed there

    start_now(campaign, now=now)

    due = dict(Message.objects.values_list("customer_id", "due_at"))
    assert due == {
        mexico.id: datetime.datetime(2026, 6, 16, 15, 0, tzinfo=UTC),
        tokyo.id: now,
        unknown.id: datetime.datetime(2026, 6, 16, 7, 0, tzinfo=UTC),  # Madrid's 09:00
        nobody.id: datetime.datetime(2026, 6, 16, 7, 0, tzinfo=UTC),
    }


def test_scheduling_a_local_time_starts_it_when_that_time_first_comes_anywhere(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    campaign = create(
        workspace, template, [audience],
        local_date=datetime.date(2026, 6, 16), local_time=datetime.time(9, 0),
    )  # fmt: skip

    scheduled = c.campaign_schedule(campaign=campaign, actor=ADMIN, now=NOW)

    assert (scheduled.status, scheduled.send_at) == (
        "scheduled", datetime.datetime(2026, 6, 15, 19, 0, tzinfo=UTC),
    )  # fmt: skip
    assert c.campaigns_tick(now=datetime.datetime(2026, 6, 15, 18, 59, tzinfo=UTC))["start"] == []
    tick = c.campaigns_tick(now=datetime.datetime(2026, 6, 15, 19, 0, tzinfo=UTC))
    assert tick["start"] == [(workspace.id, campaign.id)]
    with pytest.raises(Conflict) as error:
        c.campaign_schedule(campaign=scheduled, actor=ADMIN, now=NOW)
    assert error.value.message == (
        "the campaign is scheduled; only a draft campaign can be scheduled"
    )


def test_scheduling_needs_a_time(workspace, scope):
    campaign = create(workspace, make_template(workspace), [AudienceFactory(workspace=workspace)])

    with pytest.raises(Conflict) as error:
        c.campaign_schedule(campaign=campaign, actor=ADMIN, now=NOW)

    assert (error.value.field, error.value.message) == (
        "send_at",
        "the campaign has no time to send: set send_at or local_date and local_time first",
    )


# --------------------------------------------------------------------------------------------
# Pause, resume, cancel, completion


def test_pause_holds_pending_messages_and_resume_restores_deferred_ones(workspace, scope):
    set_policy(workspace, quiet_hours_enabled=True, quiet_hours_channels=["email"])
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    members(workspace, audience, 3)
    night = members(workspace, audience, 2, timezone="Asia/Tokyo")  # 00:00 in Tokyo: quiet
    join(workspace, audience, CustomerFactory(workspace=workspace, consent={}))
    campaign = create(workspace, template, [audience])
    start_now(campaign)
    sent = Message.objects.filter(status="queued").order_by("id").first()
    Message.objects.filter(id=sent.id).update(status="sent")
    assert statuses(campaign) == {"queued": 2, "deferred": 2, "sent": 1, "suppressed": 1}

    paused = c.campaign_pause(campaign=campaign, actor=ADMIN, now=NOW)

    assert (paused.messages, paused.campaign.status, paused.campaign.paused_at) == (
        4, "paused", NOW,
    )  # fmt: skip
    assert statuses(campaign) == {"paused": 4, "sent": 1, "suppressed": 1}
    assert MessageStatusChange.objects.filter(detail="paused with its campaign").count() == 4
    with pytest.raises(Conflict) as error:
        c.campaign_pause(campaign=campaign, actor=ADMIN, now=NOW)
    assert error.value.message == "the campaign is paused; only a sending campaign can be paused"
    assert c.campaigns_tick(now=NOW)["completed"] == []  # paused: not complete

    resumed = c.campaign_resume(campaign=campaign, actor=ADMIN, now=NOW)

    assert (resumed.messages, resumed.campaign.status) == (4, "sending")
    assert statuses(campaign) == {"queued": 2, "deferred": 2, "sent": 1, "suppressed": 1}
    assert set(Message.objects.filter(customer__in=night).values_list("status", flat=True)) == {
        "deferred"
    }


def test_cancel_ends_pending_and_paused_messages_with_their_history(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    members(workspace, audience, 4)
    campaign = create(workspace, template, [audience])
    start_now(campaign)
    first, second = Message.objects.order_by("id")[:2]
    Message.objects.filter(id=first.id).update(status="delivered")
    Message.objects.filter(id=second.id).update(status="paused")

    canceled = c.campaign_cancel(campaign=campaign, actor=ADMIN, now=NOW)

    assert (canceled.messages, canceled.campaign.status, canceled.campaign.finished_at) == (
        3, "canceled", NOW,
    )  # fmt: skip
    assert statuses(campaign) == {"canceled": 3, "delivered": 1}
    assert list(
        MessageStatusChange.objects.filter(detail="canceled with its campaign")
        .values_list("status", "at").distinct()
    ) == [("canceled", NOW)]  # fmt: skip
    assert MessageStatusChange.objects.filter(detail="canceled with its campaign").count() == 3
    with pytest.raises(Conflict) as error:
        c.campaign_cancel(campaign=campaign, actor=ADMIN, now=NOW)
    assert error.value.message == (
        "the campaign is canceled; only a scheduled or sending or paused campaign can be canceled"
    )


def test_the_tick_completes_a_campaign_when_nothing_is_pending(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    members(workspace, audience, 2)
    campaign = create(workspace, template, [audience])
    empty = create(workspace, template, [AudienceFactory(workspace=workspace)])
    start_now(campaign)
    start_now(empty)
    one, two = Message.objects.order_by("id")
    Message.objects.filter(id=one.id).update(status="sent")
    Message.objects.filter(id=two.id).update(status="sending")

    assert c.campaigns_tick(now=NOW)["completed"] == [empty.id]

    Message.objects.filter(id=two.id).update(status="failed")
    later = NOW + datetime.timedelta(minutes=1)
    assert c.campaigns_tick(now=later) == {"start": [], "completed": [campaign.id]}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.finished_at) == ("completed", later)
    assert c.campaign_progress(campaign).percent == 100


def test_a_pause_during_the_snapshot_applies_to_what_it_made(workspace, scope):
    """A pause committed while the start was snapshotting: the snapshot's end holds its rows."""
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    members(workspace, audience, 2)
    campaign = create(workspace, template, [audience])
    c.campaign_send_now(campaign=campaign, actor=ADMIN, now=NOW)
    assert c.campaign_claim_start(campaign_id=campaign.id, now=NOW)
    Campaign.objects.filter(id=campaign.id).update(status="paused")

    c._snapshot(Campaign.objects.get(id=campaign.id), NOW)

    assert statuses(campaign) == {"paused": 2}


# --------------------------------------------------------------------------------------------
# Stats, estimate, topic


def test_stats_count_each_stage_with_rates_and_an_hourly_series(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    customers = members(workspace, audience, 4)
    campaign = create(workspace, template, [audience])
    start_now(campaign)
    messages = list(Message.objects.order_by("customer_id"))
    hour = datetime.timedelta(hours=1)
    paths = [
        [("sent", NOW), ("delivered", NOW), ("opened", NOW + hour), ("clicked", NOW + hour)],
        [("sent", NOW), ("delivered", NOW + hour)],
        [("sent", NOW), ("bounced", NOW)],
        [],
    ]
    for message, path in zip(messages, paths, strict=True):
        for status, at in path:
            MessageStatusChange.objects.create(
                workspace=workspace, message=message, status=status, at=at
            )
        if path:
            Message.objects.filter(id=message.id).update(status=path[-1][0])
    Event.objects.create(
        workspace=workspace, customer=customers[0], name="Message Unsubscribed",
        properties={"campaign_id": campaign.id}, occurred_at=NOW + hour, message_id="e1",
        source="messaging",
    )  # fmt: skip

    campaign.refresh_from_db()
    stats = c.campaign_stats(campaign)

    assert stats.counts == {"sent": 3, "delivered": 2, "opened": 1, "clicked": 1, "bounced": 1,
                            "unsubscribed": 1}  # fmt: skip
    assert stats.rates == {"delivered": 0.6667, "opened": 0.3333, "clicked": 0.3333,
                           "bounced": 0.3333, "unsubscribed": 0.3333}  # fmt: skip
    assert stats.series == [
        {"hour": NOW, "sent": 3, "delivered": 1, "opened": 0, "clicked": 0, "bounced": 1},
        {"hour": NOW + hour, "sent": 0, "delivered": 1, "opened": 1, "clicked": 1, "bounced": 0},
    ]
    assert stats.variants == {
        "A": {"sent": 3, "delivered": 2, "opened": 1, "clicked": 1, "bounced": 1}
    }


def test_the_estimate_counts_the_policy_decisions_without_writing(workspace, scope):
    template = make_template(workspace)
    audience, excluded = AudienceFactory(workspace=workspace), AudienceFactory(workspace=workspace)
    members(workspace, audience, 3)
    join(workspace, audience, CustomerFactory(workspace=workspace, consent={}))
    join(workspace, audience, CustomerFactory(workspace=workspace, email=None, consent=GRANTED))
    join(workspace, excluded, *members(workspace, audience, 2))
    values = {"name": "x", "channel": "email", "audience_ids": [audience.id],
              "excluded_audience_ids": [excluded.id], "template_id": template.id}  # fmt: skip

    estimate = c.campaign_estimate(workspace=workspace, values=values, at=NOW)

    assert estimate == c.Estimate(
        total=5, reachable=3, by_code={"no_address": 1, "no_consent": 1, "ok": 3}
    )
    assert c.estimate_words(estimate, "email") == (
        "3 of 5 reachable: 1 no email address, 1 no consent"
    )
    assert Message.objects.count() == 0


def test_a_topic_send_is_one_fcm_call_to_the_audiences_topic(workspace, scope, fcm_fake):
    connect(workspace, "fcm", {"service_account": fcm_fake.service_account("acme-push")})
    push = make_template(workspace, "push")
    TemplateVersion.objects.filter(template=push).update(
        content={"title": "Hi {{ workspace.name }}", "body": "Sale {{ customer.first_name }}!"}
    )
    audience = AudienceFactory(workspace=workspace)
    members(workspace, audience, 2)
    AudienceTopic.objects.create(
        workspace=workspace, audience_id=audience.id, topic=f"{workspace.id}_audience_{audience.id}"
    )
    campaign = create(workspace, push, [audience], send_to_topic=True)

    assert start_now(campaign) == c.Started(started=True)

    campaign.refresh_from_db()
    assert campaign.status == "completed", campaign.error
    assert campaign.topic_message_id.startswith("projects/acme-push/messages/")
    sends = fcm_fake.sends
    assert len(sends) == 1
    message = sends[0].json["message"]
    assert message["topic"] == f"{workspace.id}_audience_{audience.id}"
    assert message["notification"] == {"title": "Hi Acme", "body": "Sale !"}
    assert Message.objects.count() == 0


def test_a_draft_whose_audience_went_is_not_ready_to_send(workspace, scope):
    audience = AudienceFactory(workspace=workspace)
    campaign = create(workspace, make_template(workspace), [audience])
    audience_id = audience.id
    audience.delete()

    with pytest.raises(Conflict) as error:
        c.campaign_send_now(campaign=campaign, actor=ADMIN, now=NOW)

    assert (error.value.field, error.value.message) == (
        "audience_ids",
        f"the campaign is not ready to send: no audience {audience_id} in this workspace",
    )
    assert Campaign.objects.get(id=campaign.id).status == "draft"


def test_a_local_time_follows_each_zones_daylight_saving(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    new_york = members(workspace, audience, 1, timezone="America/New_York")[0]
    campaign = create(
        workspace, template, [audience],
        local_date=datetime.date(2026, 3, 8), local_time=datetime.time(9, 0),
    )  # fmt: skip

    start_now(campaign, now=datetime.datetime(2026, 3, 7, 12, 0, tzinfo=UTC))

    # Clocks went forward at 02:00 that morning: 09:00 is EDT (UTC-4), not EST.
    assert Message.objects.get(customer=new_york).due_at == datetime.datetime(
        2026, 3, 8, 13, 0, tzinfo=UTC
    )


def test_resume_spreads_a_throttled_campaign_again_from_now(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    customers = members(workspace, audience, 3)
    campaign = create(workspace, template, [audience], throttle_per_minute=60)
    start_now(campaign)
    c.campaign_pause(campaign=campaign, actor=ADMIN, now=NOW)
    later = NOW + datetime.timedelta(hours=2)

    c.campaign_resume(campaign=campaign, actor=ADMIN, now=later)

    due = dict(Message.objects.values_list("customer_id", "due_at"))
    assert [due[i] for i in sorted(x.id for x in customers)] == [
        later + datetime.timedelta(seconds=n) for n in range(3)
    ]


def test_a_start_whose_template_was_archived_fails_with_the_reason(workspace, scope):
    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    members(workspace, audience, 2)
    campaign = create(workspace, template, [audience])
    c.campaign_send_now(campaign=campaign, actor=ADMIN, now=NOW)
    Template.objects.filter(id=template.id).update(is_archived=True)

    assert c.campaign_start(campaign_id=campaign.id, now=NOW) == c.Started(started=False)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.error, campaign.finished_at) == (
        "failed", "could not start: the template is archived", NOW,
    )  # fmt: skip
    assert Message.objects.count() == 0
    assert c.campaigns_tick(now=NOW + c.START_LEASE * 2) == {"start": [], "completed": []}


def test_the_tasks_start_a_campaign_and_the_tick_queues_due_starts(workspace, scope, monkeypatch):
    from messaging import campaign_tasks

    template = make_template(workspace)
    audience = AudienceFactory(workspace=workspace)
    members(workspace, audience, 2)
    campaign = create(workspace, template, [audience])
    c.campaign_schedule(
        campaign=c.campaign_update(campaign=campaign, values={"send_at": NOW}, actor=ADMIN),
        actor=ADMIN,
        now=NOW - datetime.timedelta(minutes=5),
    )
    queued = []
    monkeypatch.setattr(
        campaign_tasks.start_campaign, "delay", lambda **kwargs: queued.append(kwargs)
    )

    assert campaign_tasks.tick_campaigns() == {"started": [campaign.id], "completed": []}
    assert queued == [{"workspace_id": workspace.id, "campaign_id": campaign.id}]
    result = campaign_tasks.start_campaign(workspace_id=workspace.id, campaign_id=campaign.id)
    assert result == {"started": True, "created": {"ok": 2}, "already_existing": 0}
    assert campaign_tasks.start_campaign(workspace_id=workspace.id, campaign_id=campaign.id) == {
        "started": False,
        "created": {},
        "already_existing": 0,
    }
