"""Shared by the policy, outbox and API tests (no tests here): deciding by either form, and
building the facts."""

import datetime
from datetime import UTC

from masivo.tenancy.context import workspace_scope
from messaging.models import ContactPolicy, Message, Suppression, Template, TemplateVersion
from messaging.policy import contact_decide, contact_decide_many
from profiles.models import Device, ProfileSettings

AT = datetime.datetime(2026, 6, 15, 15, 0, tzinfo=UTC)
FORMS = ["python", "sql"]


def decide(form: str, customer, channel: str, kind: str = "marketing", at=AT):
    if form == "python":
        return contact_decide(customer=customer, channel=channel, kind=kind, at=at)
    decisions = contact_decide_many(
        workspace=customer.workspace,
        channel=channel,
        kind=kind,
        source_sql="SELECT %(customer)s::bigint AS customer_id",
        source_params={"customer": customer.id},
        at=at,
    )
    return decisions[customer.id]


def set_regime(workspace, regime: str) -> None:
    ProfileSettings.objects.update_or_create(
        workspace=workspace, defaults={"consent_regime": regime}
    )


def set_policy(workspace, **fields) -> ContactPolicy:
    policy, _ = ContactPolicy.objects.update_or_create(workspace=workspace, defaults=fields)
    return policy


def suppress(workspace, channel: str, address: str, reason: str) -> Suppression:
    return Suppression.objects.create(
        workspace=workspace, channel=channel, address=address, reason=reason
    )


def add_device(customer, *, enabled=True, expires_at=None) -> Device:
    return Device.objects.create(
        workspace_id=customer.workspace_id,
        customer=customer,
        token=f"token-{customer.id}-{Device.objects.count()}",
        platform="android",
        push_enabled=enabled,
        expires_at=expires_at or AT + datetime.timedelta(days=30),
    )


def sent_message(customer, channel: str, sent_at, *, kind="marketing", status="sent") -> Message:
    count = Message.all_objects.count()
    return Message.objects.create(
        workspace_id=customer.workspace_id,
        customer=customer,
        channel=channel,
        kind=kind,
        dedupe_key=f"test:{customer.id}:{count}",
        status=status,
        sent_at=sent_at,
        created_at=sent_at,
    )


def make_template(workspace, channel: str = "email", *, name=None, versions=1) -> Template:
    template = Template.objects.create(
        workspace=workspace, name=name or f"{channel} template {Template.objects.count()}",
        channel=channel,
    )  # fmt: skip
    for number in range(1, versions + 1):
        TemplateVersion.objects.create(
            workspace=workspace, template=template, number=number,
            content={"subject": f"v{number}", "html": "<p>Hi</p>"},
        )  # fmt: skip
    return template


def in_scope(workspace):
    return workspace_scope(workspace.id)
