"""Shared by the send pipeline's tests (no tests here): connections against the fakes,
templates, customers and messages written as the outbox would write them, and reading back
what the pipeline recorded."""

from __future__ import annotations

import datetime
from datetime import UTC, timedelta

from masivo.tenancy.context import workspace_scope
from messaging.models import Message, MessageStatusChange, Template, TemplateVersion
from profiles.models import Device
from tests.factories import CustomerFactory
from tests.messaging.helpers import (
    SENDGRID_KEY,
    SENDGRID_VALUES,
    TWILIO_SID,
    TWILIO_TOKEN,
    TWILIO_VALUES,
    connect,
)

AT = datetime.datetime(2026, 12, 1, 15, 0, tzinfo=UTC)

EMAIL_CONTENT = {
    "subject": "Hola {{ customer.first_name }}",
    "html": "<p>Hola {{ customer.first_name }}</p>",
    "text": "Hola {{ customer.first_name }}",
}
PUSH_CONTENT = {
    "title": "Hola {{ customer.first_name }}",
    "body": "Tu pedido salió",
    "deep_link": "acme://orders",
    "data": {"order": "9"},
}
WHATSAPP_SID = "HX" + "0123456789abcdef" * 2
WHATSAPP_CONTENT = {"content_sid": WHATSAPP_SID, "variables": {"1": "{{ customer.first_name }}"}}
SMS_CONTENT = {"body": "Hola {{ customer.first_name }}"}
IN_APP_CONTENT = {"title": "Hola {{ customer.first_name }}", "body": "Novedades"}
CONTENT = {
    "email": EMAIL_CONTENT,
    "push": PUSH_CONTENT,
    "whatsapp": WHATSAPP_CONTENT,
    "sms": SMS_CONTENT,
    "in_app": IN_APP_CONTENT,
}


def connect_sendgrid(workspace, sendgrid_fake):
    sendgrid_fake.add_key(SENDGRID_KEY)
    return connect(workspace, "sendgrid", SENDGRID_VALUES)


def connect_twilio(workspace, twilio_fake, **values):
    twilio_fake.add_account(TWILIO_SID, TWILIO_TOKEN)
    return connect(workspace, "twilio", TWILIO_VALUES | values)


def connect_fcm(workspace, fcm_fake):
    return connect(workspace, "fcm", {"service_account": fcm_fake.service_account()})


def template_version(workspace, channel: str, content: dict | None = None) -> TemplateVersion:
    with workspace_scope(workspace.id):
        template = Template.objects.create(
            workspace=workspace, name=f"{channel} {Template.objects.count()}", channel=channel
        )
        return TemplateVersion.objects.create(
            workspace=workspace,
            template=template,
            number=1,
            content=CONTENT[channel] if content is None else content,
        )


def customer(workspace, **fields):
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, **fields)


def device(workspace, customer, token: str, **fields) -> Device:
    with workspace_scope(workspace.id):
        return Device.objects.create(
            workspace=workspace,
            customer=customer,
            token=token,
            platform="android",
            expires_at=fields.pop("expires_at", AT + timedelta(days=30)),
            **fields,
        )


def queue(workspace, version, customer, *, key: str, address=None, kind="transactional", **extra):
    """A queued message, as the outbox writes it."""
    channel = version.template.channel
    if address is None:
        address = {"email": customer.email, "whatsapp": customer.phone, "sms": customer.phone}
        address = address.get(channel) or ""
    with workspace_scope(workspace.id):
        return Message.objects.create(
            workspace=workspace,
            customer=customer,
            channel=channel,
            kind=kind,
            dedupe_key=key,
            origin={"source": "test"},
            template=version.template,
            template_version=version,
            address=address,
            due_at=extra.pop("due_at", AT),
            created_at=AT,
            updated_at=AT,
            **extra,
        )


def fresh(workspace, message) -> Message:
    with workspace_scope(workspace.id):
        return Message.objects.get(id=message.id)


def history(workspace, message) -> list[tuple[str, str]]:
    with workspace_scope(workspace.id):
        return list(
            MessageStatusChange.objects.filter(message_id=message.id)
            .order_by("at", "id")
            .values_list("status", "detail")
        )
