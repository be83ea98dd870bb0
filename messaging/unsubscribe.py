"""Unsubscribe links, RFC 8058 headers and the preference centre.

Every message gets one signed token naming its workspace, customer, message and the consent
purpose of its channel. The token never expires (a link in a years-old email must still work)
and cannot be altered or forged (django.core.signing with this module's own salt, so no other
signed value of Masivo is accepted here). The same token opens both public pages:
`/m/u/<token>` (unsubscribe from the purpose, RFC 8058 one-click included) and
`/m/preferences/<token>` (choose every marketing purpose). Both record consent through
`profiles.consent.consent_update`, the one writer of consent, and nothing else.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from masivo.tenancy.models import Workspace
from messaging.models import Channel, MessageKind
from messaging.policy.vocabulary import CHANNEL_PURPOSE
from profiles.consent import consent_update, may_contact
from profiles.models import ConsentPurpose, ConsentStatus, Customer, CustomerMerge
from profiles.services.settings import profile_settings_get

_TOKEN_SALT = "masivo.messaging.unsubscribe"  # noqa: S105 (a namespace, not a secret)

# What the preference centre offers, in this order, in the customer's words.
PREFERENCE_LABELS = {
    ConsentPurpose.EMAIL_MARKETING: "Marketing emails",
    ConsentPurpose.PUSH_NOTIFICATIONS: "Push notifications",
    ConsentPurpose.WHATSAPP_MARKETING: "WhatsApp messages",
    ConsentPurpose.SMS_MARKETING: "Text messages (SMS)",
}
PREFERENCE_PURPOSES = tuple(PREFERENCE_LABELS)
# The same inside a sentence: "You will no longer receive marketing emails from Acme."
PURPOSE_PHRASES = {
    ConsentPurpose.EMAIL_MARKETING: "marketing emails",
    ConsentPurpose.PUSH_NOTIFICATIONS: "push notifications",
    ConsentPurpose.WHATSAPP_MARKETING: "WhatsApp messages",
    ConsentPurpose.SMS_MARKETING: "text messages (SMS)",
}
PREFERENCE_SOURCE = "preference-centre"
ONE_CLICK = "List-Unsubscribe=One-Click"
# A profile merged into another hands its links over; a chain longer than this is not followed.
_MAX_MERGE_HOPS = 10


@dataclass(frozen=True)
class LinkToken:
    workspace_id: int
    customer_id: int
    message_id: int | None
    purpose: str | None  # None: the message's channel has no purpose (in-app)

    @property
    def unsubscribe_source(self) -> str:
        if self.message_id is None:
            return "unsubscribe"
        return f"unsubscribe:message:{self.message_id}"


def link_token_issue(
    *, workspace_id: int, customer_id: int, message_id: int | None, purpose: str | None
) -> str:
    """A signed, non-expiring token; the same input always gives the same token."""
    payload = {"w": workspace_id, "c": customer_id, "m": message_id, "p": purpose}
    return signing.Signer(salt=_TOKEN_SALT).sign_object(payload)


def link_token_read(token: str) -> LinkToken | None:
    """What a token names, or None if it was not signed by this module (altered, forged, or
    signed for something else)."""
    try:
        payload = signing.Signer(salt=_TOKEN_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    workspace_id, customer_id = payload.get("w"), payload.get("c")
    message_id, purpose = payload.get("m"), payload.get("p")
    if not _is_id(workspace_id) or not _is_id(customer_id):
        return None
    if message_id is not None and not _is_id(message_id):
        return None
    if purpose is not None and purpose not in CHANNEL_PURPOSE.values():
        return None
    return LinkToken(workspace_id, customer_id, message_id, purpose)


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@functools.cache
def _route_prefix(route: str) -> str:
    """The route's path up to its token: reverse() costs ~0.4 ms, paid once, not per message."""
    return reverse(route, kwargs={"token": "-"})[:-1]


def _public_url(route: str, token: str) -> str:
    return settings.MASIVO_PUBLIC_URL + _route_prefix(route) + token


def message_links(message) -> dict[str, str]:
    """The links a template may use for `message`: `unsubscribe_url`, `preferences_url`.

    For an in-app message, whose channel has no consent purpose, `unsubscribe_url` is the
    preference centre. Without a customer (nothing to name) both are empty strings."""
    if message.customer_id is None:
        return {"unsubscribe_url": "", "preferences_url": ""}
    # The purpose the contact policy checks for the channel (none for in-app).
    purpose = CHANNEL_PURPOSE.get(message.channel)
    token = link_token_issue(
        workspace_id=message.workspace_id,
        customer_id=message.customer_id,
        message_id=message.id,
        purpose=purpose,
    )
    preferences_url = _public_url("messaging-preferences", token)
    unsubscribe_url = _public_url("messaging-unsubscribe", token) if purpose else preferences_url
    return {"unsubscribe_url": unsubscribe_url, "preferences_url": preferences_url}


def unsubscribe_headers(message) -> dict[str, str]:
    """`List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058 one-click) for a marketing
    email, else {}."""
    if message.channel != Channel.EMAIL or message.kind != MessageKind.MARKETING:
        return {}
    return {
        "List-Unsubscribe": f"<{message_links(message)['unsubscribe_url']}>",
        "List-Unsubscribe-Post": ONE_CLICK,
    }


# -- the public pages' services ---------------------------------------------------------------


def link_workspace(token: LinkToken) -> Workspace | None:
    return Workspace.objects.filter(id=token.workspace_id).first()


def link_customer(token: LinkToken) -> Customer | None:
    """The customer a link names, inside the token's workspace scope: the profile itself, or
    the one it was merged into; None once erased."""
    customer_id = token.customer_id
    for _ in range(_MAX_MERGE_HOPS):
        customer = Customer.objects.filter(id=customer_id).first()
        if customer is not None:
            return customer
        winner_id = (
            CustomerMerge.objects.filter(loser_id=customer_id, winner__isnull=False)
            .order_by("-merged_at", "-id")
            .values_list("winner_id", flat=True)
            .first()
        )
        if winner_id is None:
            return None
        customer_id = winner_id
    return None


def unsubscribe_record(*, customer: Customer, token: LinkToken) -> Customer:
    """Withdraw the link's purpose. Idempotent: an unsubscribed customer stays as they are (no
    second ConsentChange). A link without a purpose changes nothing."""
    if token.purpose is None:
        return customer
    return consent_update(
        customer=customer,
        changes={token.purpose: ConsentStatus.DENIED},
        source=token.unsubscribe_source,
    )


@dataclass(frozen=True)
class PurposeChoice:
    purpose: str
    label: str
    is_allowed: bool


def preferences_list(*, workspace: Workspace, customer: Customer) -> list[PurposeChoice]:
    """Each marketing purpose and whether it allows contact now, under the workspace's regime
    (a purpose not recorded is allowed under opt-out, not under opt-in)."""
    settings_row = profile_settings_get(workspace=workspace)
    return [
        PurposeChoice(
            purpose=purpose.value,
            label=PREFERENCE_LABELS[purpose],
            is_allowed=may_contact(customer, purpose.value, settings=settings_row),
        )
        for purpose in PREFERENCE_PURPOSES
    ]


def preferences_save(
    *, workspace: Workspace, customer: Customer, choices: dict[str, bool]
) -> Customer:
    """Record the purposes whose choice differs from what the policy allows now: granted or
    denied, with the source `preference-centre`. Purposes not in `choices`, or outside the
    preference centre's, are left alone; saving the same choices again records nothing."""
    settings_row = profile_settings_get(workspace=workspace)
    changes = {}
    for purpose in PREFERENCE_PURPOSES:
        if purpose.value not in choices:
            continue
        wanted = choices[purpose.value]
        if may_contact(customer, purpose.value, settings=settings_row) == wanted:
            continue
        changes[purpose.value] = ConsentStatus.GRANTED if wanted else ConsentStatus.DENIED
    if not changes:
        return customer
    return consent_update(customer=customer, changes=changes, source=PREFERENCE_SOURCE)
