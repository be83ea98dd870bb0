"""The policy's settings services: contact_policy_update and the suppression list."""

import datetime

import pytest

from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.roles import Role
from messaging.models import ContactPolicy, Suppression
from messaging.policy.settings import contact_policy_get, contact_policy_update, workspace_zone
from messaging.policy.suppressions import suppression_add

pytestmark = pytest.mark.django_db

ADMIN = Actor(role=Role.ADMIN, user_id=1)
MARKETER = Actor(role=Role.MARKETER, user_id=2)


@pytest.fixture
def scope(workspace):
    with workspace_scope(workspace.id):
        yield


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"frequency_caps": [{"channel": "*", "limit": True, "window_hours": 1}]},
         "frequency_caps[0].limit", "must be a whole number"),
        ({"frequency_caps": [{"channel": "*", "limit": 1, "window_hours": 0}]},
         "frequency_caps[0].window_hours", "must be between 1 and 8,760"),
        ({"frequency_caps": [{"channel": "*", "limit": 1}]},
         "frequency_caps[0].window_hours", "required"),
        ({"frequency_caps": [{"channel": "*", "limit": 1, "window_hours": 1}] * 21},
         "frequency_caps", "at most 20 caps"),
        ({"quiet_hours_start": "7:00"}, "quiet_hours_start",
         "a time of day as HH:MM (00:00 to 23:59)"),
        ({"quiet_hours_channels": "email"}, "quiet_hours_channels", "must be a list of channels"),
        ({"size": 1}, "size", "unknown field"),
    ],
)  # fmt: skip
def test_bad_settings_name_their_field_and_save_nothing(workspace, scope, changes, field, message):
    contact_policy_get(workspace=workspace)

    with pytest.raises(InvalidInput) as raised:
        contact_policy_update(workspace=workspace, changes=changes, actor=ADMIN)

    assert (raised.value.field, raised.value.message) == (field, message)
    assert ContactPolicy.objects.values_list("frequency_caps", "quiet_hours_end").get() == (
        [], datetime.time(8),
    )  # fmt: skip


def test_channels_are_kept_in_a_fixed_order(workspace, scope):
    policy = contact_policy_update(
        workspace=workspace,
        changes={"quiet_hours_channels": ["sms", "email", "sms"], "quiet_hours_end": "07:15"},
        actor=ADMIN,
    )

    assert (policy.quiet_hours_channels, policy.quiet_hours_end) == (
        ["email", "sms"], datetime.time(7, 15),
    )  # fmt: skip


def test_only_admins_change_the_policy(workspace, scope):
    with pytest.raises(NotAllowed):
        contact_policy_update(workspace=workspace, changes={}, actor=MARKETER)


def test_an_unknown_workspace_zone_falls_back_to_utc(workspace):
    workspace.timezone = "Mars/Olympus"

    assert workspace_zone(workspace) == "UTC"


def test_feedback_adding_an_address_again_is_idempotent_and_a_bounce_wins(workspace, scope):
    first, created = suppression_add(
        workspace=workspace, channel="email", address="Ana@Example.com", reason="unsubscribe"
    )
    again, created_again = suppression_add(
        workspace=workspace, channel="email", address="ana@example.com", reason="spam_report"
    )
    bounced, _ = suppression_add(
        workspace=workspace, channel="email", address="ana@example.com", reason="hard_bounce",
        source="sendgrid", detail="550 no such user",
    )  # fmt: skip

    assert (created, created_again) == (True, False)
    assert first.id == again.id == bounced.id
    assert again.reason == "unsubscribe"  # a weaker reason does not replace another
    assert Suppression.objects.values_list("address", "reason", "source", "detail").get() == (
        "ana@example.com", "hard_bounce", "sendgrid", "550 no such user",
    )  # fmt: skip


def test_a_person_adding_a_listed_address_is_told(workspace, scope):
    suppression_add(workspace=workspace, channel="sms", address="+525512345678")

    with pytest.raises(Conflict, match=r"\+525512345678 is already suppressed \(Added by hand\)"):
        suppression_add(
            workspace=workspace, channel="sms", address="+52 55 1234 5678", actor=MARKETER
        )
