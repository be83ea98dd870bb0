"""Push topics per audience: an audience's members' active push devices, with push consent, are
kept subscribed to the audience's FCM topic, so a campaign can reach them in one send.

What a device should be subscribed to is a function of the database (membership, the
customer's devices, push consent); `topics_reconcile` brings FCM to it for some customers and
topics, and records what FCM now holds in `TopicSubscription`. Every change that can move that
function reaches it through a feed with its own cursor (masivo.feeds), read, applied at FCM and
advanced in one transaction:

- the membership feed, scoped per topic's audience: enters and exits (removal of a customer
  ends memberships with exits too);
- the profile-change feed: `device` (registered, removed, token changed, push disabled),
  `consent:push_notifications`, and customers merged, deleted or erased.

A crash before the commit replays the batch, and subscribing or unsubscribing again is harmless
at FCM, so the consumer is idempotent. A topic made for an audience that already has members
subscribes them by a backfill in chunks of customers, with a checkpoint. Removing a topic
unsubscribes every device first, then deletes it. The beat sweep (every 30 s) runs all of it:
subscriptions lag membership by up to that.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from firebase_admin import messaging as fcm
from firebase_admin.exceptions import FirebaseError
from google.auth.exceptions import GoogleAuthError
from requests import RequestException

from masivo.feeds.services import feed_consume, feed_cursor_create, feed_cursor_delete
from masivo.tenancy.actors import Actor
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from messaging.channels.push import firebase_app
from messaging.models import AudienceTopic, ChannelConnection, TopicSubscription
from messaging.policy.sql import binder
from profiles.consent import consent_allows_sql, consent_opt_out
from profiles.models import ConsentPurpose, ProfileChange
from profiles.services.settings import profile_settings_get

logger = logging.getLogger(__name__)

MEMBERSHIP_FEED = "membership_changes"
PROFILE_FEED = "profile_changes"
CONSUMER = "messaging.push_topics"
FCM_BATCH = 1000  # tokens per subscribe / unsubscribe call (FCM's limit)
CUSTOMER_CHUNK = 1000  # customers reconciled per statement (backfill, feed batches)
BATCHES_PER_RUN = 20  # per topic and feed, then the next run goes on
TOPIC_NAME = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,900}$")
PUSH = ConsentPurpose.PUSH_NOTIFICATIONS.value
_PROFILE_KEYS = {"device", f"consent:{PUSH}", "*"}
_GONE = {ProfileChange.Kind.DELETED, ProfileChange.Kind.ERASED, ProfileChange.Kind.MERGED_AWAY}


class TopicsUnavailable(Exception):
    """FCM is not connected, or failed in a way worth retrying (5xx, 429, timeouts, refused
    credentials): the transaction rolls back (what FCM did take is harmless to repeat) and the
    next run tries again."""


# Per-token answers that retrying will not change: the token is dead or malformed.
PERMANENT_TOKEN_ERRORS = {"UNREGISTERED", "NOT_FOUND", "INVALID_ARGUMENT"}


def _refused(response, topic: str) -> dict[int, str]:
    """The tokens FCM refused for good, by index; raises TopicsUnavailable if any failed for
    a reason worth retrying."""
    refused = {}
    for error in response.errors:
        if error.reason not in PERMANENT_TOKEN_ERRORS:
            raise TopicsUnavailable(f"FCM answered {error.reason} for topic {topic}; retrying")
        refused[error.index] = error.reason
    return refused


def topic_name(workspace_id: int, audience_id: int) -> str:
    name = f"{workspace_id}_audience_{audience_id}"
    assert TOPIC_NAME.match(name)
    return name


# ---------------------------------------------------------------------------------------------
# Enabling and removing topics


def topic_enable(*, workspace: Workspace, audience_id: int, actor: Actor) -> AudienceTopic:
    """Keep `audience_id`'s members subscribed to its topic from now on; the members it has
    already are subscribed by the backfill. Needs FCM connected."""
    from audiences.models import Audience

    if not actor.can(Permission.EDIT_MARKETING):
        raise NotAllowed("only marketers, admins and owners manage push topics")
    if not Audience.objects.filter(id=audience_id).exists():
        raise InvalidInput("no such audience in this workspace", field="audience_id")
    if not ChannelConnection.objects.filter(provider=ChannelConnection.Provider.FCM).exists():
        raise Conflict("connect Firebase Cloud Messaging first (Settings → Channels)")
    try:
        with transaction.atomic():
            topic = AudienceTopic.objects.create(
                workspace=workspace,
                audience_id=audience_id,
                topic=topic_name(workspace.id, audience_id),
                created_by=actor.label,
            )
            # From now: what happened before is the backfill's (it reads the membership).
            feed_cursor_create(
                workspace_id=workspace.id,
                feed=MEMBERSHIP_FEED,
                consumer=CONSUMER,
                scope=audience_id,
                from_now=True,
            )
            feed_cursor_create(
                workspace_id=workspace.id, feed=PROFILE_FEED, consumer=CONSUMER, from_now=True
            )
    except IntegrityError:
        raise Conflict("this audience already has a push topic", field="audience_id") from None
    _wake(workspace.id)
    return topic


def topic_remove(*, topic: AudienceTopic, actor: Actor) -> AudienceTopic:
    """Unsubscribe every device, then delete the topic (in the background)."""
    if not actor.can(Permission.EDIT_MARKETING):
        raise NotAllowed("only marketers, admins and owners manage push topics")
    AudienceTopic.objects.filter(id=topic.id).update(status=AudienceTopic.Status.REMOVING)
    topic.status = AudienceTopic.Status.REMOVING
    _wake(topic.workspace_id)
    return topic


def _wake(workspace_id: int) -> None:
    from masivo.tenancy.wakeups import task_wake_on_commit

    task_wake_on_commit("messaging.sync_push_topics", workspace_id=workspace_id)


# ---------------------------------------------------------------------------------------------
# Reconciling


_DESIRED_SQL = """
SELECT m.audience_id, d.customer_id, d.token
  FROM audiences_membership m
  JOIN profiles_device d ON d.workspace_id = m.workspace_id AND d.customer_id = m.customer_id
  JOIN profiles_customer c ON c.workspace_id = m.workspace_id AND c.id = m.customer_id
 WHERE m.workspace_id = %(workspace)s
   AND m.audience_id = ANY(%(audiences)s::bigint[])
   AND m.customer_id = ANY(%(customers)s::bigint[])
   AND d.push_enabled AND d.expires_at > %(now)s
   AND {consent}
"""

_CURRENT_SQL = """
SELECT s.id, t.audience_id, s.customer_id, s.token
  FROM messaging_topicsubscription s
  JOIN messaging_audiencetopic t ON t.id = s.topic_id
 WHERE s.workspace_id = %(workspace)s
   AND s.topic_id = ANY(%(topics)s::bigint[])
   AND (s.customer_id = ANY(%(customers)s::bigint[]) OR s.token = ANY(%(tokens)s::text[]))
"""


@dataclass
class Reconciled:
    subscribed: int = 0
    unsubscribed: int = 0
    moved: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Reconciled) -> None:
        self.subscribed += other.subscribed
        self.unsubscribed += other.unsubscribed
        self.moved += other.moved
        self.failed += other.failed
        self.errors += other.errors[:5]


def _desired(workspace, audience_ids, customer_ids, now) -> dict[tuple[int, str], int]:
    """(audience, token) → customer, for what should be subscribed."""
    opt_out = consent_opt_out(profile_settings_get(workspace=workspace))
    params = {
        "workspace": workspace.id,
        "audiences": sorted(audience_ids),
        "customers": sorted(customer_ids),
        "now": now,
        "purpose": PUSH,
    }
    consent = consent_allows_sql("c.consent", "%(purpose)s", opt_out=opt_out, bind=binder(params))
    with connection.cursor() as cursor:
        cursor.execute(_DESIRED_SQL.format(consent=consent), params)
        return {(audience, token): customer for audience, customer, token in cursor.fetchall()}


def topics_reconcile(
    *,
    workspace: Workspace,
    topics: list[AudienceTopic],
    customer_ids,
    now: datetime | None = None,
    app=None,
) -> Reconciled:
    """Bring FCM to what these customers' devices should be subscribed to in these topics
    (removing topics: nothing), and record it. Call inside a transaction. FCM's transport
    errors propagate (the caller's transaction rolls back); a token FCM refuses is counted and
    left unsubscribed."""
    now = now or timezone.now()
    customer_ids = sorted(set(customer_ids))
    result = Reconciled()
    if not topics or not customer_ids:
        return result
    by_audience = {topic.audience_id: topic for topic in topics}
    active = [t.audience_id for t in topics if t.status == AudienceTopic.Status.ACTIVE]
    desired = _desired(workspace, active, customer_ids, now) if active else {}
    with connection.cursor() as cursor:
        cursor.execute(
            _CURRENT_SQL,
            {
                "workspace": workspace.id,
                "topics": [topic.id for topic in topics],
                "customers": customer_ids,
                "tokens": sorted({token for _, token in desired}),
            },
        )
        current = {(audience, token): (id_, customer) for id_, audience, customer, token in cursor}
    wanted_customers = set(customer_ids)
    adds: dict[int, list[tuple[str, int]]] = defaultdict(list)
    removes: dict[int, list[tuple[str, int]]] = defaultdict(list)
    moved = []  # a token now registered to another customer: the same subscription, re-owned
    for (audience, token), customer in desired.items():
        if (audience, token) not in current:
            adds[audience].append((token, customer))
        elif current[audience, token][1] != customer:
            moved.append(TopicSubscription(id=current[audience, token][0], customer_id=customer))
    if moved:
        TopicSubscription.objects.bulk_update(moved, ["customer_id"])
        result.moved = len(moved)
    for (audience, token), (id_, customer) in current.items():
        if (audience, token) not in desired and customer in wanted_customers:
            removes[audience].append((token, id_))
    if not adds and not removes:
        return result
    with _fcm_app() if app is None else nullcontext(app) as fcm_app:
        for audience, pairs in removes.items():
            topic = by_audience[audience]
            for chunk in _chunks(pairs, FCM_BATCH):
                response = fcm.unsubscribe_from_topic(
                    [t for t, _ in chunk], topic.topic, app=fcm_app
                )
                _refused(response, topic.topic)  # a dead token is unsubscribed as it is
                TopicSubscription.objects.filter(id__in=[id_ for _, id_ in chunk]).delete()
                result.unsubscribed += len(chunk)
        for audience, pairs in adds.items():
            topic = by_audience[audience]
            for chunk in _chunks(pairs, FCM_BATCH):
                response = fcm.subscribe_to_topic([t for t, _ in chunk], topic.topic, app=fcm_app)
                refused = _refused(response, topic.topic)
                TopicSubscription.objects.bulk_create(
                    [
                        TopicSubscription(
                            workspace=workspace,
                            topic=topic,
                            customer_id=customer,
                            token=token,
                            subscribed_at=now,
                        )
                        for index, (token, customer) in enumerate(chunk)
                        if index not in refused
                    ]
                )
                result.subscribed += len(chunk) - len(refused)
                result.failed += len(refused)
                result.errors += [f"{topic.topic}: {reason}" for reason in refused.values()][:5]
    return result


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fcm_app():
    connection_ = ChannelConnection.objects.filter(provider=ChannelConnection.Provider.FCM).first()
    if connection_ is None:
        raise TopicsUnavailable("Firebase Cloud Messaging is not connected")
    account = connection_.credentials["service_account"]
    return firebase_app(account, connection_.settings.get("project_id") or account["project_id"])


# ---------------------------------------------------------------------------------------------
# The consumer: one run per workspace (the task in messaging/topic_tasks.py)


@dataclass
class SyncResult:
    reconciled: Reconciled = field(default_factory=Reconciled)
    membership_rows: int = 0
    profile_rows: int = 0
    backfilled: int = 0
    removed_topics: int = 0
    has_more: bool = False
    has_failed: bool = False  # the reason is on the topics (`last_error`); the next run retries


def push_topics_sync(*, workspace: Workspace, now: datetime | None = None) -> SyncResult:
    """Apply what the feeds say since the cursors, continue backfills, finish removals. Each
    step is its own transaction (cursor or checkpoint advanced with its effects). A missing
    FCM connection records the reason on the topics and leaves the cursors where they are."""
    from audiences.models import Audience

    result = SyncResult()
    orphaned = AudienceTopic.objects.filter(status=AudienceTopic.Status.ACTIVE).exclude(
        audience_id__in=Audience.objects.values("id")
    )
    orphaned.update(status=AudienceTopic.Status.REMOVING)  # the audience was deleted
    topics = list(AudienceTopic.objects.order_by("id"))
    if not topics:
        return result
    try:
        _sync(workspace, topics, result, now)
    except (TopicsUnavailable, FirebaseError, GoogleAuthError, RequestException) as error:
        logger.warning("push topics of workspace %s: %s", workspace.id, error)
        AudienceTopic.objects.update(last_error=str(error)[:500] or error.__class__.__name__)
        result.has_failed = True
        return result
    AudienceTopic.objects.filter(id__in=[t.id for t in topics]).update(
        last_error="", last_synced_at=timezone.now()
    )
    return result


def _sync(workspace, topics, result: SyncResult, now) -> None:
    active = [t for t in topics if t.status == AudienceTopic.Status.ACTIVE]
    for topic in active:
        for _ in range(BATCHES_PER_RUN):
            with feed_consume(
                workspace_id=workspace.id,
                feed=MEMBERSHIP_FEED,
                consumer=CONSUMER,
                scope=topic.audience_id,
                limit=CUSTOMER_CHUNK,
            ) as batch:
                customers = {row["customer_id"] for row in batch.rows}
                result.reconciled.add(
                    topics_reconcile(
                        workspace=workspace, topics=[topic], customer_ids=customers, now=now
                    )
                )
                result.membership_rows += len(batch.rows)
            if not batch.has_more:
                break
        else:
            result.has_more = True
    if active:
        for _ in range(BATCHES_PER_RUN):
            with feed_consume(
                workspace_id=workspace.id,
                feed=PROFILE_FEED,
                consumer=CONSUMER,
                limit=CUSTOMER_CHUNK,
            ) as batch:
                customers = {
                    row["customer_id"]
                    for row in batch.rows
                    if row["kind"] in _GONE or _PROFILE_KEYS & set(_keys(row["keys"]))
                }
                result.reconciled.add(
                    topics_reconcile(
                        workspace=workspace, topics=active, customer_ids=customers, now=now
                    )
                )
                result.profile_rows += len(batch.rows)
            if not batch.has_more:
                break
        else:
            result.has_more = True
    for topic in active:
        if topic.backfilled_at is None:
            result.has_more |= _backfill(workspace, topic, result, now)
    for topic in topics:
        if topic.status == AudienceTopic.Status.REMOVING:
            result.has_more |= _remove(workspace, topic, result, now)


def _keys(keys) -> list[str]:
    return json.loads(keys) if isinstance(keys, str) else keys or []


def _backfill(workspace, topic: AudienceTopic, result: SyncResult, now) -> bool:
    """Subscribe the members the audience had when the topic was made, a chunk of customers
    per transaction from the checkpoint; True while there is more."""
    from audiences.models import Membership

    for _ in range(BATCHES_PER_RUN):
        with transaction.atomic():
            locked = AudienceTopic.objects.select_for_update().get(id=topic.id)
            if locked.backfilled_at is not None or locked.status != AudienceTopic.Status.ACTIVE:
                return False
            customers = list(
                Membership.objects.filter(
                    audience_id=topic.audience_id, customer_id__gt=locked.backfill_after
                )
                .order_by("customer_id")
                .values_list("customer_id", flat=True)[:CUSTOMER_CHUNK]
            )
            result.reconciled.add(
                topics_reconcile(
                    workspace=workspace, topics=[locked], customer_ids=customers, now=now
                )
            )
            result.backfilled += len(customers)
            done = len(customers) < CUSTOMER_CHUNK
            AudienceTopic.objects.filter(id=topic.id).update(
                backfill_after=customers[-1] if customers else locked.backfill_after,
                backfilled_at=timezone.now() if done else None,
            )
        if done:
            return False
    return True


def _remove(workspace, topic: AudienceTopic, result: SyncResult, now) -> bool:
    """Unsubscribe a removing topic's devices a chunk at a time, then delete it; True while
    there is more."""
    for _ in range(BATCHES_PER_RUN):
        with transaction.atomic():
            customers = list(
                TopicSubscription.objects.filter(topic=topic)
                .order_by("customer_id")
                .values_list("customer_id", flat=True)
                .distinct()[:CUSTOMER_CHUNK]
            )
            if not customers:
                AudienceTopic.objects.filter(id=topic.id).delete()
                feed_cursor_delete(
                    workspace_id=workspace.id,
                    feed=MEMBERSHIP_FEED,
                    consumer=CONSUMER,
                    scope=topic.audience_id,
                )
                if not AudienceTopic.objects.exists():
                    # No topic left to follow devices and consent for: the cursor would hold
                    # back the profile-change feed's retention forever.
                    feed_cursor_delete(
                        workspace_id=workspace.id, feed=PROFILE_FEED, consumer=CONSUMER
                    )
                result.removed_topics += 1
                return False
            result.reconciled.add(
                topics_reconcile(
                    workspace=workspace, topics=[topic], customer_ids=customers, now=now
                )
            )
    return True


def workspaces_with_topics() -> list[int]:
    """Workspaces that have push topics (call in all_workspaces scope)."""
    return sorted(set(AudienceTopic.objects.values_list("workspace_id", flat=True)))
