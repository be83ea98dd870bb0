"""Near-real-time forwarding of events, profile changes and audience memberships.

Two steps per destination, each safe to crash in:

1. **collect** (one short transaction): read the feeds the destination follows (processed
   events, profile changes, membership changes) after its own cursors
   (`destinations.forwarding:<destination id>`), keep what its filters let through, write it as
   one `ForwardBatch` of references ordered by the feeds' transaction ids (so per customer in
   the order things happened), and advance the cursors. A crash before commit reads the same
   rows again; nothing is skipped or collected twice.
2. **send** (outside any transaction): the oldest pending batch of the destination, built into
   items at send time (an erased customer is no longer there to send), consent checked
   (purpose and vendor), sent in the connector's chunks. Progress within a batch is kept
   (`sent_count`), so a crash resends at most one chunk, with the same dedupe ids
   (`event_id`, `webhook-id`), which the platforms apply once. A failing batch is retried with
   backoff and holds back later batches (order); after the retry budget it is dead-lettered,
   visible and replayable, and the next batch goes.

Erased and deleted customers: the destinations that have a deletion signal (Braze
`/users/delete`, webhooks `customer.deleted`) get it, by the id they know the customer by
(`RemoteContact`), since the profile is gone.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audiences.apps import MEMBERSHIP_CHANGES_FEED
from audiences.models import Audience
from destinations.connectors import connector_for
from destinations.connectors.base import (
    DELETION,
    Connector,
    ConnectorError,
    DestinationBroken,
    ErasedCustomer,
    ForwardItem,
    RetryLater,
)
from destinations.identifiers import member_identifiers, platform_identifiers
from destinations.models import Destination, ForwardBatch, RemoteContact
from destinations.ratelimit import request_slot
from masivo.feeds.services import feed_advance, feed_cursor_create, feed_cursor_delete, feed_read
from masivo.jobs import TRANSIENT_ERRORS
from profiles.apps import PROCESSED_EVENTS_FEED, PROFILE_CHANGES_FEED
from profiles.consent import consent_allows, vendor_allows
from profiles.models import Customer, Event, ProfileSettings

logger = logging.getLogger(__name__)

CONSUMER = "destinations.forwarding"
FEEDS = (PROCESSED_EVENTS_FEED, PROFILE_CHANGES_FEED, MEMBERSHIP_CHANGES_FEED)
TYPE_FEEDS = {
    "events": PROCESSED_EVENTS_FEED,
    "profiles": PROFILE_CHANGES_FEED,
    "memberships": MEMBERSHIP_CHANGES_FEED,
}
COLLECT_LIMIT = 1000  # feed rows a feed a batch
MAX_ATTEMPTS = 10
FIRST_BACKOFF = timedelta(seconds=5)
MAX_BACKOFF = timedelta(hours=1)
LEASE = timedelta(minutes=2)  # a batch being sent is not taken by another worker meanwhile
GONE_KINDS = ("deleted", "erased", "merged_away")
PROFILE_FIELDS = ("external_id", "email", "phone", "first_name", "last_name", "country",
                  "city", "timezone", "locale", "gender", "tier")  # fmt: skip


def _consumer(destination: Destination) -> str:
    return f"{CONSUMER}:{destination.id}"


def _followed(destination: Destination) -> list[str]:
    forwarding = destination.forwarding or {}
    if not forwarding.get("enabled"):
        return []
    return [TYPE_FEEDS[name] for name in forwarding.get("types", []) if name in TYPE_FEEDS]


def forwarding_start(destination: Destination) -> None:
    """Start following the feeds from now (called when forwarding is turned on)."""
    for feed in _followed(destination):
        feed_cursor_create(workspace_id=destination.workspace_id, feed=feed,
                           consumer=_consumer(destination), from_now=True)  # fmt: skip


def forwarding_stop(destination: Destination) -> None:
    """Forget the cursors (they no longer hold feed retention back)."""
    for feed in FEEDS:
        feed_cursor_delete(workspace_id=destination.workspace_id, feed=feed,
                           consumer=_consumer(destination))  # fmt: skip


# Collect --------------------------------------------------------------------------------------


def _event_ref(row: dict, names: set[str]) -> dict | None:
    if row["customer_id"] is None or (names and row["name"] not in names):
        return None
    return {"type": "event", "id": row["event_id"], "customer_id": row["customer_id"],
            "name": row["name"], "occurred_at": row["occurred_at"].isoformat()}  # fmt: skip


def _profile_ref(row: dict, traits: set[str]) -> dict | None:
    keys = row["keys"] if isinstance(row["keys"], list) else []
    if row["kind"] == "updated":
        # Only changes the destination receives: fields, consent, allowed traits.
        wanted = [
            key
            for key in keys
            if key == "*"
            or key.startswith(("field:", "consent"))
            or (key.startswith("traits:") and key.removeprefix("traits:") in traits)
        ]
        if not wanted or wanted == ["field:updated_at"]:
            return None
        keys = wanted
    return {"type": "profile", "id": row["id"], "customer_id": row["customer_id"],
            "kind": row["kind"], "keys": keys,
            "occurred_at": row["changed_at"].isoformat()}  # fmt: skip


def _membership_ref(row: dict) -> dict:
    return {"type": "membership", "id": row["id"], "customer_id": row["customer_id"],
            "audience_id": row["audience_id"], "kind": row["kind"],
            "occurred_at": row["changed_at"].isoformat()}  # fmt: skip


def forwarding_collect(destination: Destination, *, limit: int = COLLECT_LIMIT) -> int:
    """Read what is new for the destination into one ForwardBatch; returns items collected
    (0 when there was nothing, or the filters kept nothing)."""
    forwarding = destination.forwarding or {}
    names = set(forwarding.get("event_names") or [])
    traits = set(forwarding.get("traits") or [])
    refs: list[tuple[tuple, dict]] = []
    with transaction.atomic():
        for order, feed in enumerate(_followed(destination)):
            batch = feed_read(workspace_id=destination.workspace_id, feed=feed,
                              consumer=_consumer(destination), limit=limit)  # fmt: skip
            for row in batch.rows:
                if feed == PROCESSED_EVENTS_FEED:
                    ref = _event_ref(row, names)
                elif feed == PROFILE_CHANGES_FEED:
                    ref = _profile_ref(row, traits)
                else:
                    ref = _membership_ref(row)
                if ref is not None:
                    refs.append(((row["xid"], order, row["id"]), ref))
            feed_advance(batch=batch)
        if refs:
            items = [ref for _, ref in sorted(refs, key=lambda pair: pair[0])]
            ForwardBatch.objects.create(
                workspace_id=destination.workspace_id, destination=destination, items=items,
                size=len(items),
            )  # fmt: skip
    return len(refs)


# Send -----------------------------------------------------------------------------------------


def _claim(destination: Destination, now: datetime) -> ForwardBatch | None:
    """The destination's oldest pending batch if it is due (order: a later batch waits)."""
    with transaction.atomic():
        batch = (
            ForwardBatch.objects.select_for_update(skip_locked=True)
            .filter(destination=destination, status=ForwardBatch.Status.PENDING)
            .order_by("id")
            .first()
        )
        if batch is None or batch.next_attempt_at > now:
            return None
        if ForwardBatch.objects.filter(destination=destination, status="pending",
                                       id__lt=batch.id).exists():  # fmt: skip
            return None  # an older one is being sent by another worker
        batch.attempts += 1
        batch.next_attempt_at = now + LEASE
        batch.save(update_fields=["attempts", "next_attempt_at"])
    return batch


def _customer_doc(customer: Customer, traits: set[str]) -> dict:
    doc = {name: getattr(customer, name) or None for name in PROFILE_FIELDS}
    doc["id"] = customer.id
    doc["traits"] = {key: value for key, value in (customer.traits or {}).items()
                     if key in traits}  # fmt: skip
    doc["consent"] = customer.consent or {}
    doc["created_at"] = customer.created_at.isoformat()
    doc["updated_at"] = customer.updated_at.isoformat()
    doc["birth_date"] = customer.birth_date.isoformat() if customer.birth_date else None
    return doc


def _allowed(customer: Customer, connector: type[Connector], destination: Destination,
             settings: ProfileSettings) -> bool:  # fmt: skip
    opt_out = settings.consent_regime == ProfileSettings.ConsentRegime.OPT_OUT
    if connector.consent_purpose and not consent_allows(
        customer.consent, connector.consent_purpose, opt_out=opt_out
    ):
        return False
    return vendor_allows(customer.consent_vendors, destination.key,
                         required=settings.vendor_consent_required)  # fmt: skip


def build_items(destination: Destination, connector: type[Connector], refs: list[dict]
                ) -> tuple[list[ForwardItem], dict[str, str], list[int]]:  # fmt: skip
    """The batch's references as items; (items, skipped dedupe id → reason, ids of customers
    gone with a deletion signal to send)."""
    traits = set((destination.forwarding or {}).get("traits") or [])
    required = getattr(connector, "required_traits", None)  # GA4's client id trait
    if required:
        traits |= set(required(destination.config or {}))
    settings = ProfileSettings.objects.filter(workspace_id=destination.workspace_id).first()
    settings = settings or ProfileSettings(workspace_id=destination.workspace_id)
    customer_ids = {ref["customer_id"] for ref in refs if ref.get("customer_id")}
    customers = {c.id: c for c in Customer.objects.filter(id__in=customer_ids)}
    event_refs = [ref for ref in refs if ref["type"] == "event"]
    events = {}
    if event_refs:
        times = [datetime.fromisoformat(ref["occurred_at"]) for ref in event_refs]
        events = {e.id: e for e in Event.objects.filter(
            id__in=[ref["id"] for ref in event_refs],
            occurred_at__gte=min(times), occurred_at__lte=max(times))}  # fmt: skip
    audience_ids = {ref["audience_id"] for ref in refs if ref["type"] == "membership"}
    audiences = dict(Audience.objects.filter(id__in=audience_ids).values_list("id", "name"))
    wanted = platform_identifiers(connector.platform)
    items, skipped, gone = [], {}, []
    for ref in refs:
        customer = customers.get(ref["customer_id"])
        occurred_at = datetime.fromisoformat(ref["occurred_at"])
        if ref["type"] == "profile" and ref["kind"] in GONE_KINDS:
            dedupe = f"profile-{ref['id']}"
            gone.append(ref["customer_id"])
            items.append(ForwardItem(type="profile", dedupe_id=dedupe, kind=ref["kind"],
                                     customer_id=ref["customer_id"], occurred_at=occurred_at,
                                     changed=ref.get("keys", [])))  # fmt: skip
            continue
        dedupe = {"event": "event-", "profile": "profile-", "membership": "membership-"}[
            ref["type"]] + str(ref["id"])  # fmt: skip
        if customer is None:
            skipped[dedupe] = "customer gone"
            continue
        if not _allowed(customer, connector, destination, settings):
            skipped[dedupe] = "no consent"
            continue
        common = {
            "customer_id": customer.id,
            "occurred_at": occurred_at,
            "customer": _customer_doc(customer, traits),
            "identifiers": member_identifiers(customer, connector.platform, wanted),
        }
        if ref["type"] == "event":
            event = events.get(ref["id"])
            if event is None:
                skipped[dedupe] = "event gone"
                continue
            # The event's own message id is what a browser pixel sends as its event id, so
            # the platforms dedupe our copy against theirs.
            dedupe = event.message_id or dedupe
            items.append(ForwardItem(
                type="event", dedupe_id=dedupe, kind=event.type, event={
                    "id": event.id, "name": event.name, "properties": event.properties,
                    "occurred_at": event.occurred_at.isoformat(), "message_id": event.message_id,
                    "context": event.context}, **common))  # fmt: skip
        elif ref["type"] == "profile":
            items.append(ForwardItem(type="profile", dedupe_id=dedupe, kind=ref["kind"],
                                     changed=ref.get("keys", []), **common))  # fmt: skip
        else:
            audience = {"id": ref["audience_id"], "name": audiences.get(ref["audience_id"], ""),
                        "kind": ref["kind"]}  # fmt: skip
            kind = "entered" if ref["kind"] == "enter" else "exited"
            items.append(ForwardItem(type="membership", dedupe_id=dedupe, kind=kind,
                                     audience=audience, **common))  # fmt: skip
    return items, skipped, gone


def _remember_contacts(destination: Destination, connector: Connector,
                       items: list[ForwardItem]) -> None:  # fmt: skip
    external_id_for = getattr(connector, "external_id_for", None)
    if external_id_for is None or not connector.has(DELETION):
        return
    rows = {}
    for item in items:
        if item.customer is not None and item.customer_id not in rows:
            remote_id = external_id_for(item.customer_id, item.customer.get("external_id"))
            if remote_id:
                rows[item.customer_id] = RemoteContact(
                    workspace_id=destination.workspace_id, destination=destination,
                    customer_id=item.customer_id, remote_id=remote_id)  # fmt: skip
    RemoteContact.objects.bulk_create(rows.values(), ignore_conflicts=True)


def _signal_erasure(destination: Destination, connector: Connector, gone: list[int]) -> None:
    if not gone or not connector.has(DELETION):
        return
    contacts = RemoteContact.objects.filter(destination=destination, customer_id__in=gone)
    known = {contact.customer_id: contact.remote_id for contact in contacts}
    if getattr(connector, "external_id_for", None) is None:
        known = {customer_id: str(customer_id) for customer_id in gone} | known
    erased = [ErasedCustomer(customer_id, remote_id) for customer_id, remote_id in known.items()]
    if erased:
        request_slot(destination, connector)
        connector.customers_erased(erased)
    RemoteContact.objects.filter(destination=destination, customer_id__in=gone).delete()


def _backoff(attempts: int, retry_after: float | None) -> timedelta:
    base = min(FIRST_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)
    return timedelta(seconds=max(base.total_seconds() * random.uniform(0.5, 1.0),  # noqa: S311 (jitter)
                                 retry_after or 0))  # fmt: skip


def _send_batch(destination: Destination, connector: Connector, batch: ForwardBatch) -> None:
    items, skipped, gone = build_items(destination, type(connector), batch.items)
    size = connector.batch_size
    start = batch.sent_count  # items of this batch already sent before a crash or a retry
    remaining = items[start:]
    for offset in range(0, len(remaining), size):
        chunk = remaining[offset : offset + size]
        request_slot(destination, connector)
        result = connector.forward(chunk)
        skipped.update(result.skipped)
        _remember_contacts(destination, connector, chunk)
        ForwardBatch.objects.filter(id=batch.id).update(sent_count=start + offset + len(chunk))
    _signal_erasure(destination, connector, gone)
    ForwardBatch.objects.filter(id=batch.id).update(
        status=ForwardBatch.Status.SENT, sent_at=timezone.now(), error="",
        skipped_count=len(skipped), sent_count=len(items),
    )  # fmt: skip


def forwarding_send(destination: Destination, *, now: datetime | None = None,
                    max_batches: int = 20) -> int:  # fmt: skip
    """Send the destination's due batches in order; returns batches sent."""
    sent = 0
    connector = connector_for(destination)
    for _ in range(max_batches):
        batch = _claim(destination, now or timezone.now())
        if batch is None:
            break
        try:
            _send_batch(destination, connector, batch)
        except (RetryLater, *TRANSIENT_ERRORS) as error:
            retry_after = getattr(error, "retry_after", None)
            _batch_retry(batch, f"{type(error).__name__}: {error}", retry_after)
            break
        except DestinationBroken as error:
            from destinations.services import destination_status_record

            destination_status_record(destination=destination, active=False, reason=str(error))
            _batch_retry(batch, f"the destination was disabled: {error}", None)
            break
        except ConnectorError as error:
            _batch_retry(batch, f"{type(error).__name__}: {error}", None)
            break
        sent += 1
    return sent


def _batch_retry(batch: ForwardBatch, reason: str, retry_after: float | None) -> None:
    if batch.attempts >= MAX_ATTEMPTS:
        ForwardBatch.objects.filter(id=batch.id).update(
            status=ForwardBatch.Status.DEAD, error=f"gave up after {batch.attempts} attempts: "
            f"{reason}"[:2000])  # fmt: skip
        return
    ForwardBatch.objects.filter(id=batch.id).update(
        next_attempt_at=timezone.now() + _backoff(batch.attempts, retry_after),
        error=reason[:2000],
    )


def forward_batch_replay(batch: ForwardBatch) -> ForwardBatch:
    """A dead batch, pending again (from where it stopped), with a fresh retry budget."""
    ForwardBatch.objects.filter(id=batch.id, status=ForwardBatch.Status.DEAD).update(
        status=ForwardBatch.Status.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
    batch.refresh_from_db()
    return batch


def forwarding_destinations() -> list[tuple[int, int]]:
    """(workspace id, destination id) of active destinations that forward (cross-tenant)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT workspace_id, id FROM destinations_destination"
            " WHERE status = 'active' AND (forwarding ->> 'enabled')::boolean ORDER BY id"
        )
        return [tuple(row) for row in cursor.fetchall()]


def forwarding_tick_one(destination: Destination) -> dict:
    """Collect what is new and send what is due, for one destination."""
    if not destination.is_active or not (destination.forwarding or {}).get("enabled"):
        return {"collected": 0, "sent": 0}
    collected = 0
    while True:
        count = forwarding_collect(destination)
        collected += count
        if count < COLLECT_LIMIT:
            break
    return {"collected": collected, "sent": forwarding_send(destination)}
