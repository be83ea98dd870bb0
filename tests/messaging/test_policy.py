"""The contact policy: every reason, in order, by both forms (Python and SQL)."""

import datetime
from datetime import UTC

import pytest

from masivo.tenancy.context import workspace_scope
from messaging.policy.vocabulary import Decision
from tests.factories import CustomerFactory
from tests.messaging.test_policy_support import (
    AT,
    FORMS,
    add_device,
    decide,
    sent_message,
    set_policy,
    set_regime,
    suppress,
)

pytestmark = pytest.mark.django_db

GRANTED = {"status": "granted"}
ALL_GRANTED = {
    purpose: GRANTED
    for purpose in ("email_marketing", "push_notifications", "whatsapp_marketing", "sms_marketing")
}
PHONE = "+525512345678"
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield


def customer(workspace, **fields):
    return CustomerFactory(
        workspace=workspace,
        **{"email": "ana@example.com", "phone": PHONE, "consent": ALL_GRANTED, **fields},
    )


def ok(address="ana@example.com", due_at=AT):
    return Decision(code="ok", text="queued", address=address, due_at=due_at)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("channel", "address"),
    [("email", "ana@example.com"), ("whatsapp", PHONE), ("sms", PHONE), ("in_app", "")],
)
def test_a_reachable_consenting_customer_is_ok(workspace, scope, form, channel, address):
    ana = customer(workspace)

    assert decide(form, ana, channel) == ok(address)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("kind", ["marketing", "transactional"])
@pytest.mark.parametrize(
    ("channel", "fields", "text"),
    [
        ("email", {"email": None}, "suppressed: no email address"),
        ("email", {"email": "not-an-address"}, "suppressed: no email address"),
        ("whatsapp", {"phone": None}, "suppressed: no phone number"),
        ("sms", {"phone": "5512345678"}, "suppressed: no phone number"),
        ("push", {}, "suppressed: no active push device"),
    ],
)
def test_no_address_for_either_kind(workspace, scope, form, kind, channel, fields, text):
    ana = customer(workspace, **fields)

    assert decide(form, ana, channel, kind) == Decision("no_address", text, "", AT)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("device", "expected"),
    [
        pytest.param({}, "ok", id="active"),
        pytest.param({"enabled": False}, "no_address", id="push-disabled"),
        pytest.param({"expires_at": AT}, "no_address", id="expired"),
    ],
)
def test_push_needs_an_active_device(workspace, scope, form, device, expected):
    ana = customer(workspace)
    add_device(ana, **device)

    assert decide(form, ana, "push").code == expected


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("reason", "text", "blocks_transactional"),
    [
        ("hard_bounce", "suppressed: hard bounce", True),
        ("invalid_address", "suppressed: invalid address", True),
        ("spam_report", "suppressed: spam report", False),
        ("unsubscribe", "suppressed: unsubscribed", False),
        ("manual", "suppressed: on the suppression list", False),
    ],
)
def test_the_suppression_list(workspace, scope, form, reason, text, blocks_transactional):
    ana = customer(workspace)
    suppress(workspace, "email", "ana@example.com", reason)

    marketing = decide(form, ana, "email", "marketing")
    transactional = decide(form, ana, "email", "transactional")

    assert marketing == Decision("suppressed", text, "ana@example.com", AT)
    assert transactional.code == ("suppressed" if blocks_transactional else "ok")
    assert decide(form, ana, "sms") == ok(PHONE)  # another channel's list


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("channel", "purpose"),
    [
        ("email", "email_marketing"),
        ("push", "push_notifications"),
        ("whatsapp", "whatsapp_marketing"),
        ("sms", "sms_marketing"),
    ],
)
def test_marketing_needs_the_channels_consent(workspace, scope, form, channel, purpose):
    ana = customer(workspace, consent=ALL_GRANTED | {purpose: {"status": "denied"}})
    add_device(ana)

    assert decide(form, ana, channel).text == "suppressed: no consent"
    assert decide(form, ana, channel).code == "no_consent"
    assert decide(form, ana, channel, "transactional").code == "ok"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("regime", "expected"), [("opt_in", "no_consent"), ("opt_out", "ok")])
def test_not_recorded_consent_follows_the_regime(workspace, scope, form, regime, expected):
    set_regime(workspace, regime)
    ana = customer(workspace, consent={})

    assert decide(form, ana, "email").code == expected
    assert decide(form, ana, "in_app").code == "ok"  # in-app needs no consent


@pytest.mark.parametrize("form", FORMS)
def test_a_cap_per_channel_counts_that_channels_marketing_sent_in_the_window(
    workspace, scope, form
):
    set_policy(workspace, frequency_caps=[{"channel": "email", "limit": 2, "window_hours": 24}])
    ana = customer(workspace)
    sent_message(ana, "email", AT - 30 * HOUR)  # outside the window
    sent_message(ana, "email", AT - 2 * HOUR, status="queued")  # not sent
    sent_message(ana, "email", AT - 2 * HOUR, kind="transactional")  # not counted
    sent_message(ana, "sms", AT - 2 * HOUR)  # another channel
    sent_message(ana, "email", AT - 3 * HOUR, status="opened")
    assert decide(form, ana, "email").code == "ok"

    sent_message(ana, "email", AT - HOUR, status="delivered")

    assert decide(form, ana, "email") == Decision(
        "frequency_cap", "suppressed: frequency cap 2 per 24 h (email)", "ana@example.com", AT
    )
    assert decide(form, ana, "sms").code == "ok"
    assert decide(form, ana, "email", "transactional").code == "ok"


@pytest.mark.parametrize("form", FORMS)
def test_a_cap_across_channels(workspace, scope, form):
    set_policy(
        workspace,
        frequency_caps=[
            {"channel": "email", "limit": 5, "window_hours": 24},
            {"channel": "*", "limit": 2, "window_hours": 48},
        ],
    )
    ana = customer(workspace)
    sent_message(ana, "sms", AT - 40 * HOUR)
    sent_message(ana, "push", AT - HOUR, status="clicked")

    for channel in ("email", "whatsapp", "in_app"):
        assert (
            decide(form, ana, channel).text == "suppressed: frequency cap 2 per 48 h (all channels)"
        )


@pytest.mark.parametrize("form", FORMS)
def test_the_first_cap_reached_is_named(workspace, scope, form):
    set_policy(
        workspace,
        frequency_caps=[
            {"channel": "*", "limit": 1, "window_hours": 1},
            {"channel": "email", "limit": 1, "window_hours": 24},
        ],
    )
    ana = customer(workspace)
    sent_message(ana, "email", AT - 2 * HOUR)

    assert decide(form, ana, "email").text == "suppressed: frequency cap 1 per 24 h (email)"


QUIET = {
    "quiet_hours_enabled": True,
    "quiet_hours_start": datetime.time(21),
    "quiet_hours_end": datetime.time(8),
    "quiet_hours_channels": ["email", "push"],
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("zone", "at", "until"),
    [
        # 22:30 in Mexico City (UTC-6): until 08:00 the next day.
        ("America/Mexico_City", datetime.datetime(2026, 6, 16, 4, 30, tzinfo=UTC),
         datetime.datetime(2026, 6, 16, 14, 0, tzinfo=UTC)),
        # 06:00 in Mexico City: until 08:00 the same day.
        ("America/Mexico_City", datetime.datetime(2026, 6, 15, 12, 0, tzinfo=UTC),
         datetime.datetime(2026, 6, 15, 14, 0, tzinfo=UTC)),
        # 21:00 exactly in Madrid (UTC+2 in summer) starts quiet hours.
        ("Europe/Madrid", datetime.datetime(2026, 6, 15, 19, 0, tzinfo=UTC),
         datetime.datetime(2026, 6, 16, 6, 0, tzinfo=UTC)),
        # 23:00 in Tokyo (UTC+9).
        ("Asia/Tokyo", datetime.datetime(2026, 6, 15, 14, 0, tzinfo=UTC),
         datetime.datetime(2026, 6, 15, 23, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_quiet_hours_defer_to_their_end_in_the_customers_zone(
    workspace, scope, form, zone, at, until
):
    set_policy(workspace, **QUIET)
    ana = customer(workspace, timezone=zone)

    assert decide(form, ana, "email", at=at) == Decision(
        "quiet_hours_deferred", f"deferred: quiet hours until 08:00 {zone}", "ana@example.com",
        until,
    )  # fmt: skip
    assert decide(form, ana, "email", "transactional", at=at).code == "ok"
    assert decide(form, ana, "sms", at=at).code == "ok"  # not a quiet-hours channel


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    "at",
    [
        datetime.datetime(2026, 6, 15, 14, 0, tzinfo=UTC),  # 08:00 in Mexico City: over
        datetime.datetime(2026, 6, 16, 2, 59, tzinfo=UTC),  # 20:59
    ],
)
def test_outside_quiet_hours_is_ok(workspace, scope, form, at):
    set_policy(workspace, **QUIET)
    ana = customer(workspace, timezone="America/Mexico_City")

    assert decide(form, ana, "email", at=at) == ok(due_at=at)


@pytest.mark.parametrize("form", FORMS)
def test_the_workspace_zone_is_the_fallback(workspace, scope, form):
    workspace.timezone = "Asia/Tokyo"
    workspace.save()
    set_policy(workspace, **QUIET)
    ana = customer(workspace, timezone="")
    at = datetime.datetime(2026, 6, 15, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo, 14:00 in UTC

    assert decide(form, ana, "email", at=at).text == "deferred: quiet hours until 08:00 Asia/Tokyo"


@pytest.mark.parametrize("form", FORMS)
def test_quiet_hours_can_skip(workspace, scope, form):
    set_policy(workspace, **QUIET, quiet_hours_action="skip")
    ana = customer(workspace, timezone="America/Mexico_City")
    at = datetime.datetime(2026, 6, 16, 4, 30, tzinfo=UTC)

    assert decide(form, ana, "email", at=at) == Decision(
        "quiet_hours_skipped", "suppressed: quiet hours 21:00-08:00 America/Mexico_City",
        "ana@example.com", at,
    )  # fmt: skip


@pytest.mark.parametrize("form", FORMS)
def test_a_daytime_window(workspace, scope, form):
    set_policy(workspace, **QUIET | {"quiet_hours_start": datetime.time(12),
                                     "quiet_hours_end": datetime.time(14)})  # fmt: skip
    ana = customer(workspace, timezone="UTC")

    assert decide(form, ana, "email", at=AT.replace(hour=13)).due_at == AT.replace(hour=14)
    assert decide(form, ana, "email", at=AT.replace(hour=14)).code == "ok"
    assert decide(form, ana, "email", at=AT.replace(hour=11)).code == "ok"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("at", "until"),
    [
        # New York springs forward on 2026-03-08 at 02:00 (EST→EDT): 22:00 EST on the 7th is
        # quiet until 08:00 EDT on the 8th, 12:00 UTC (not 13:00).
        (datetime.datetime(2026, 3, 8, 3, 0, tzinfo=UTC),
         datetime.datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # And falls back on 2026-11-01: 22:00 EDT on Oct 31 until 08:00 EST, 13:00 UTC.
        (datetime.datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
         datetime.datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_quiet_hours_across_a_dst_change(workspace, scope, form, at, until):
    set_policy(workspace, **QUIET)
    ana = customer(workspace, timezone="America/New_York")

    assert decide(form, ana, "email", at=at).due_at == until


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("end", "until"),
    [
        # 02:30 does not exist on 2026-03-08 in New York: it is read as 03:30 EDT (07:30 UTC).
        (datetime.time(2, 30), datetime.datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
        # 01:30 happens twice on 2026-11-01: the later one, 01:30 EST (06:30 UTC).
        (datetime.time(1, 30), datetime.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
    ],
)
def test_an_end_the_dst_change_skips_or_repeats(workspace, scope, form, end, until):
    set_policy(workspace, **QUIET | {"quiet_hours_start": datetime.time(0), "quiet_hours_end": end})
    ana = customer(workspace, timezone="America/New_York")
    at = until.replace(hour=5, minute=10)  # 00:10 or 01:10 local, in the window

    assert decide(form, ana, "email", at=at).due_at == until


@pytest.mark.parametrize("form", FORMS)
def test_the_reasons_come_in_order(workspace, scope, form):
    set_policy(
        workspace, **QUIET, frequency_caps=[{"channel": "*", "limit": 1, "window_hours": 24}]
    )
    night = datetime.datetime(2026, 6, 16, 4, 30, tzinfo=UTC)
    ana = customer(workspace, consent={"email_marketing": {"status": "denied"}},
                   timezone="America/Mexico_City")  # fmt: skip
    sent_message(ana, "email", night - HOUR)
    suppress(workspace, "email", "ana@example.com", "unsubscribe")

    assert decide(form, ana, "email", at=night).code == "suppressed"
    assert decide(form, ana, "email", "transactional", at=night).code == "ok"


@pytest.mark.parametrize("form", FORMS)
def test_a_window_that_ends_when_it_starts_is_empty(workspace, scope, form):
    set_policy(workspace, **QUIET | {"quiet_hours_start": datetime.time(8)})
    ana = customer(workspace, timezone="UTC")

    for hour in (0, 8, 12, 23):
        assert decide(form, ana, "email", at=AT.replace(hour=hour)).code == "ok"
