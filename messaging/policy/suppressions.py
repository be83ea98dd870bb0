"""The suppression list: addresses never to send to on a channel. One owner for
`Suppression`: the API, the dashboard and delivery feedback (bounces, spam reports,
unsubscribes) call these."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from masivo.tenancy.actors import Actor
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from messaging.models import Channel, Suppression
from messaging.policy.vocabulary import ADDRESSED_CHANNELS
from profiles import normalize


def suppression_address(channel: str, address) -> str:
    """The address as the list and the policy compare it: emails trimmed and lower-cased,
    phones as E.164. A malformed one is an InvalidInput naming `address`."""
    if channel not in ADDRESSED_CHANNELS:
        raise InvalidInput("one of email, whatsapp, sms", field="channel")
    if not isinstance(address, str) or not address.strip():
        raise InvalidInput("required", field="address")
    if channel == Channel.EMAIL:
        return normalize.clean_email(address, field="address")
    return normalize.clean_phone(address, field="address")


def suppressions_list(
    *, channel: str | None = None, reason: str | None = None, address: str | None = None
) -> QuerySet[Suppression]:
    suppressions = Suppression.objects.order_by("-id")
    if channel:
        suppressions = suppressions.filter(channel=channel)
    if reason:
        suppressions = suppressions.filter(reason=reason)
    if address:
        suppressions = suppressions.filter(address__startswith=address.strip().lower())
    return suppressions


def suppression_add(
    *,
    workspace: Workspace,
    channel: str,
    address: str,
    reason: str = Suppression.Reason.MANUAL,
    source: str = "",
    detail: str = "",
    message_id: int | None = None,
    actor: Actor | None = None,
) -> tuple[Suppression, bool]:
    """Add an address (idempotent: an address already listed keeps its row; a hard bounce or an
    invalid address replaces a weaker reason, since it blocks more). Returns (row, created).
    `actor` is None for delivery feedback; people need edit-marketing."""
    if actor is not None and not actor.can(Permission.EDIT_MARKETING):
        raise NotAllowed("viewers cannot change the suppression list")
    if reason not in Suppression.Reason.values:
        raise InvalidInput(f"one of {', '.join(Suppression.Reason.values)}", field="reason")
    cleaned = suppression_address(channel, address)
    fields = {"reason": reason, "source": source[:100], "detail": detail[:500]}
    try:
        with transaction.atomic():
            row = Suppression.objects.create(
                workspace=workspace, channel=channel, address=cleaned, message_id=message_id,
                **fields,
            )  # fmt: skip
            return row, True
    except IntegrityError:
        row = Suppression.objects.get(channel=channel, address=cleaned)
    blocks_more = {Suppression.Reason.HARD_BOUNCE, Suppression.Reason.INVALID_ADDRESS}
    if reason in blocks_more and row.reason not in blocks_more:
        Suppression.objects.filter(id=row.id).update(**fields)
        row.refresh_from_db()
    elif actor is not None:
        raise Conflict(f"{cleaned} is already suppressed ({row.get_reason_display()})",
                       field="address")  # fmt: skip
    return row, False


def suppression_remove(*, suppression: Suppression, actor: Actor) -> None:
    if not actor.can(Permission.EDIT_MARKETING):
        raise NotAllowed("viewers cannot change the suppression list")
    suppression.delete()
