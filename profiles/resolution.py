"""Who each tracked message is about: identity resolution, set-based over many messages.

`Resolution` takes validated messages in the order they were received and, in the caller's
transaction: drops those naming an erased identifier, finds or creates the customers their user
ids name, links anonymous ids (and the history stored under them) to those customers, merges
profiles on alias, and applies identify traits in order. The native events API runs it inside
its request; the tracking API stores messages first and the ingestion follow-up runs it over
many batches at once (`profiles.followup`), one follow-up per workspace at a time, so a user's
messages apply in the order they were stored.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import datetime

from django.db import connection

from masivo.sql import server_bound_cursor
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.models import Workspace
from profiles.changes import (
    ANYTHING,
    customer_snapshot,
    keys_between,
    profile_changes_record,
)
from profiles.customer_insert import customer_insert_sql
from profiles.eventlog import events_relink_history
from profiles.fields import split_segment_traits
from profiles.models import Customer, Identity, ProfileChange
from profiles.services.customers import customers_merge, identifier_hash
from profiles.services.settings import profile_settings_get
from profiles.tracked import BatchResult, Rejection, TrackedMessage

logger = logging.getLogger(__name__)

# New customers named by user id; every other column takes its model default.
_CUSTOMER_INSERT, _CUSTOMER_INSERT_DEFAULTS = customer_insert_sql(
    values={
        "workspace_id": "%(workspace)s",
        "external_id": "external_id",
        "created_at": "%(now)s",
        "updated_at": "%(now)s",
    },
    source="unnest(%(external_ids)s::text[]) AS external_id",
    suffix="ON CONFLICT (workspace_id, external_id) WHERE external_id IS NOT NULL DO NOTHING",
)

_TRAITS_UPDATE = """
UPDATE profiles_customer c
   SET email = v.email, phone = v.phone, first_name = v.first_name, last_name = v.last_name,
       gender = v.gender, birth_date = v.birth_date, country = v.country, city = v.city,
       timezone = v.timezone, locale = v.locale, tier = v.tier, traits = v.traits,
       updated_at = %(now)s
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
       id bigint, email text, phone text, first_name text, last_name text, gender text,
       birth_date date, country text, city text, timezone text, locale text, tier text,
       traits jsonb)
 WHERE c.workspace_id = %(workspace)s AND c.id = v.id
"""

# Lookups one value at a time (a LATERAL index probe each): with the RLS policy in the plan,
# `value = ANY(array)` was sometimes planned as a scan of the whole workspace.
_IDENTITY_LOOKUP = """
SELECT v.value, i.customer_id
  FROM unnest(%(values)s::text[]) AS v(value)
  CROSS JOIN LATERAL (
      SELECT customer_id FROM profiles_identity
       WHERE workspace_id = %(workspace)s AND kind = %(kind)s AND value = v.value LIMIT 1) i
"""
_CUSTOMER_LOOKUP = """
SELECT v.value, c.id
  FROM unnest(%(values)s::text[]) AS v(value)
  CROSS JOIN LATERAL (
      SELECT id FROM profiles_customer
       WHERE workspace_id = %(workspace)s AND external_id = v.value LIMIT 1) c
"""


def _has_tombstones(workspace_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM profiles_erasuretombstone WHERE workspace_id = %s)",
            [workspace_id],
        )
        return cursor.fetchone()[0]


def _fetch_pairs(sql: str, params) -> dict:
    with server_bound_cursor() as cursor:  # arrays of up to a claim's worth of ids
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


class Resolution:
    """The state of one resolution: the messages and who their ids name."""

    def __init__(
        self,
        workspace: Workspace,
        messages: list[TrackedMessage],
        *,
        source: str,
        now: datetime,
        result: BatchResult | None = None,
    ):
        self.workspace = workspace
        self.messages = messages
        self.source = source
        self.now = now
        self.result = result or BatchResult()
        self.customer_by_user: dict[str, int] = {}
        self.customer_by_anonymous: dict[str, int] = {}
        self.shared_anonymous_ids: set[str] = set()

    def run(self) -> None:
        """Every step, in order (drop_erased first: an erased id must create nothing)."""
        self.drop_erased()
        self.resolve_users()
        self.resolve_anonymous()
        self.link_anonymous()
        self.apply_aliases()
        self.apply_traits()

    def customer_of(self, message: TrackedMessage) -> int | None:
        """The customer a message is about once resolved (None: an unknown anonymous id)."""
        customer_id = message.customer_id
        if customer_id is None and message.user_id:
            customer_id = self.customer_by_user.get(message.user_id)
        if customer_id is None and message.anonymous_id:
            customer_id = self.customer_by_anonymous.get(message.anonymous_id)
        return customer_id

    def warn(self, text: str) -> None:
        self.result.warnings.append(text)
        logger.info("workspace %s, %s: %s", self.workspace.id, self.source, text)

    def drop_erased(self) -> None:
        if not self.messages or not _has_tombstones(self.workspace.id):
            return  # most workspaces: no sha256 per identifier, no lookup
        hashes: dict[str, set[int]] = defaultdict(set)
        for message in self.messages:
            for kind, value in (
                ("external_id", message.user_id),
                ("anonymous_id", message.anonymous_id),
                ("email", message.traits.get("email") if message.type == "identify" else None),
                # alias(previousId): an erased user id or anonymous id must not come back
                ("external_id", message.previous_id),
                ("anonymous_id", message.previous_id),
            ):
                if isinstance(value, str) and value:
                    hashes[
                        identifier_hash(
                            self.workspace.id,
                            kind,
                            value.strip().lower() if kind == "email" else value,
                        )
                    ].add(message.index)
        if not hashes:
            return
        with server_bound_cursor() as cursor:  # a few hundred hashes a batch
            cursor.execute(
                "SELECT identifier_hash FROM profiles_erasuretombstone "
                "WHERE workspace_id = %s AND identifier_hash = ANY(%s)",
                [self.workspace.id, list(hashes)],
            )
            erased = {row[0] for row in cursor.fetchall()}
        dropped = {index for digest in erased for index in hashes[digest]}
        for message in self.messages:
            if message.index in dropped:
                self.result.rejected.append(
                    Rejection(
                        message.index, "the customer was erased", message_id=message.message_id
                    )
                )
        self.messages = [m for m in self.messages if m.index not in dropped]

    # -- identities -----------------------------------------------------------------------

    def resolve_users(self) -> None:
        user_ids = sorted({m.user_id for m in self.messages if m.user_id})
        if not user_ids:
            return
        self.customer_by_user = self._identities("alias", user_ids)
        missing = [u for u in user_ids if u not in self.customer_by_user]
        if missing:
            with connection.cursor() as cursor:
                cursor.execute(
                    _CUSTOMER_INSERT,
                    _CUSTOMER_INSERT_DEFAULTS
                    | {"workspace": self.workspace.id, "now": self.now, "external_ids": missing},
                )
            created = _fetch_pairs(
                _CUSTOMER_LOOKUP, {"values": missing, "workspace": self.workspace.id}
            )
            self.customer_by_user |= created
            profile_changes_record(
                workspace_id=self.workspace.id,
                changes=[(customer_id, [ANYTHING]) for customer_id in sorted(created.values())],
                source="tracking",
                kind=ProfileChange.Kind.CREATED,
                now=self.now,
            )

    def _identities(self, kind: str, values: list[str]) -> dict[str, int]:
        return _fetch_pairs(
            _IDENTITY_LOOKUP, {"values": values, "workspace": self.workspace.id, "kind": kind}
        )

    def resolve_anonymous(self) -> None:
        anonymous_ids = sorted(
            {m.anonymous_id for m in self.messages if m.anonymous_id}
            | {m.previous_id for m in self.messages if m.type == "alias" and m.previous_id}
        )
        if anonymous_ids:
            self.customer_by_anonymous = self._identities("anonymous_id", anonymous_ids)

    def link_anonymous(self) -> None:
        """identify/track with both ids: the anonymous id (and its history) joins the customer."""
        wanted: dict[str, int] = {}
        for message in self.messages:
            pairs = [(message.anonymous_id, message.user_id)]
            if message.type == "alias" and message.previous_id:
                pairs.append((message.previous_id, message.user_id))
            for anonymous_id, user_id in pairs:
                if not anonymous_id or not user_id:
                    continue
                customer_id = self.customer_by_user[user_id]
                linked = self.customer_by_anonymous.get(anonymous_id, wanted.get(anonymous_id))
                if linked is None:
                    wanted[anonymous_id] = customer_id
                elif linked != customer_id and anonymous_id not in self.shared_anonymous_ids:
                    self.shared_anonymous_ids.add(anonymous_id)
                    self.warn(
                        f"anonymous id {anonymous_id!r} already belongs to another customer; "
                        "it was not moved"
                    )
        if not wanted:
            return
        wanted = self._within_identity_limit(wanted)
        Identity.objects.bulk_create(
            [
                Identity(
                    workspace_id=self.workspace.id,
                    customer_id=customer_id,
                    kind=Identity.Kind.ANONYMOUS_ID,
                    value=anonymous_id,
                    created_at=self.now,
                )
                for anonymous_id, customer_id in sorted(wanted.items())
            ],
            ignore_conflicts=True,
        )
        # Re-read: a concurrent batch may have linked some of them first.
        self.customer_by_anonymous |= _fetch_pairs(
            "SELECT value, customer_id FROM profiles_identity "
            "WHERE workspace_id = %s AND kind = 'anonymous_id' AND value = ANY(%s)",
            [self.workspace.id, sorted(wanted)],
        )
        linked = {
            a: self.customer_by_anonymous[a] for a in wanted if a in self.customer_by_anonymous
        }
        events_relink_history(workspace_id=self.workspace.id, links=linked)

    def _within_identity_limit(self, wanted: dict[str, int]) -> dict[str, int]:
        limit = profile_settings_get(workspace=self.workspace).max_identities_per_customer
        counts = _fetch_pairs(
            "SELECT customer_id, count(*) FROM profiles_identity "
            "WHERE workspace_id = %s AND customer_id = ANY(%s) GROUP BY customer_id",
            [self.workspace.id, sorted(set(wanted.values()))],
        )
        allowed = {}
        for anonymous_id, customer_id in sorted(wanted.items()):
            if counts.get(customer_id, 0) >= limit:
                self.warn(
                    f"customer {customer_id} reached the limit of {limit} identities; "
                    f"anonymous id {anonymous_id!r} was not linked"
                )
                continue
            counts[customer_id] = counts.get(customer_id, 0) + 1
            allowed[anonymous_id] = customer_id
        return allowed

    def apply_aliases(self) -> None:
        """alias(previousId → userId): a previous *user* id merges that profile into this one."""
        for message in self.messages:
            if message.type != "alias" or not message.previous_id or not message.user_id:
                continue
            winner_id = self.customer_by_user[message.user_id]
            loser = Customer.objects.filter(external_id=message.previous_id).first()
            if loser is None or loser.id == winner_id:
                continue
            winner = Customer.objects.get(id=winner_id)
            try:
                customers_merge(winner=winner, loser=loser, reason="alias", actor=self.source)
            except ServiceError as error:  # a refused merge must not cost the batch its events
                self.warn(f"alias {message.previous_id!r}: {error.message}")
                continue
            for ids in (self.customer_by_user, self.customer_by_anonymous):
                for value, customer_id in ids.items():
                    if customer_id == loser.id:
                        ids[value] = winner_id

    def apply_traits(self) -> None:
        updates: dict[int, list[TrackedMessage]] = defaultdict(list)
        for message in self.messages:
            if message.type == "identify" and message.user_id and message.traits:
                updates[self.customer_by_user[message.user_id]].append(message)
        if not updates:
            return
        # FOR NO KEY UPDATE, in id order: the events' foreign keys take FOR KEY SHARE on these
        # rows at commit, which a plain FOR UPDATE would conflict with (deadlocks under load).
        customers = {
            c.id: c
            for c in Customer.objects.select_for_update(no_key=True)
            .filter(id__in=sorted(updates))
            .order_by("id")
        }
        before = {c.id: customer_snapshot(c) for c in customers.values()}
        wanted_emails = {}
        for customer_id, messages in updates.items():
            customer = customers[customer_id]
            for message in messages:
                fields, rest, problems = split_segment_traits(message.traits)
                for problem in problems:
                    self.warn(
                        f"message {message.index}: {problem.field}: {problem.message} "
                        "(kept as a plain trait)"
                    )
                if "email" in fields:
                    wanted_emails[customer_id] = fields.pop("email")
                for name, value in fields.items():
                    setattr(customer, name, value)
                customer.traits = {**customer.traits, **rest}
                if "locale" in message.context and not customer.locale:
                    customer.locale = str(message.context["locale"])[:35]
            customer.updated_at = self.now
        self._assign_emails(customers, wanted_emails)
        rows = [
            {
                "id": c.id, "email": c.email, "phone": c.phone, "first_name": c.first_name,
                "last_name": c.last_name, "gender": c.gender,
                "birth_date": c.birth_date.isoformat() if c.birth_date else None,
                "country": c.country, "city": c.city, "timezone": c.timezone,
                "locale": c.locale, "tier": c.tier, "traits": c.traits,
            }
            for c in customers.values()
        ]  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                _TRAITS_UPDATE,
                {"rows": json.dumps(rows), "now": self.now, "workspace": self.workspace.id},
            )
        profile_changes_record(
            workspace_id=self.workspace.id,
            changes=[
                (c.id, keys_between(before[c.id], customer_snapshot(c))) for c in customers.values()
            ],
            source="tracking",
            now=self.now,
        )

    def _assign_emails(self, customers: dict[int, Customer], wanted: dict[int, str]) -> None:
        if not wanted:
            return
        owners = _fetch_pairs(
            "SELECT email, id FROM profiles_customer WHERE workspace_id = %s AND email = ANY(%s)",
            [self.workspace.id, sorted(set(wanted.values()))],
        )
        for customer_id, email in wanted.items():
            owner = owners.get(email)
            if owner is not None and owner != customer_id:
                self.warn(
                    f"email {email} belongs to another customer; not set on customer {customer_id}"
                )
                continue
            owners[email] = customer_id
            customers[customer_id].email = email
