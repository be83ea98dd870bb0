"""Reads on audiences: previews, explanations, members and the change feed."""

from __future__ import annotations

from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from audiences.apps import MEMBERSHIP_CHANGES_FEED
from audiences.facts import facts_for_customers
from audiences.models import Audience, ListUpload, Membership, MembershipChange, Recalculation
from audiences.recalculation import compiler_for_workspace
from audiences.rules.evaluator import Evaluator
from audiences.services import audience_rules_validated, validated_rules
from masivo.feeds.selectors import FeedPosition, feed_rows_after
from masivo.tenancy.errors import ServiceError
from profiles.models import Customer

PREVIEW_TIMEOUT_MS = 5000
PREVIEW_SAMPLE = 10


class PreviewTooSlow(ServiceError):
    status = 400
    code = "preview_timeout"


def audience_preview(*, workspace, rules_document, now: datetime | None = None) -> dict:
    """Count and sample of unsaved rules, bounded by a statement timeout. The rules are checked
    as saving checks them (references included)."""
    now = now or timezone.now()
    rules = audience_rules_validated(workspace=workspace, document=rules_document)
    members, params = compiler_for_workspace(workspace=workspace, now=now).members_sql(rules)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {int(PREVIEW_TIMEOUT_MS)}")
            cursor.execute(f"SELECT count(*) FROM ({members}) AS matched", params)  # noqa: S608
            count = cursor.fetchone()[0]
            cursor.execute(f"{members} ORDER BY c.id DESC LIMIT {PREVIEW_SAMPLE}", params)
            sample_ids = [row[0] for row in cursor.fetchall()]
    except DatabaseError as error:
        if "statement timeout" not in str(error):
            raise
        raise PreviewTooSlow(
            f"the preview took longer than {PREVIEW_TIMEOUT_MS // 1000} s; narrow the rules "
            "or save the audience and let the recalculation run in the background"
        ) from error
    sample = list(
        Customer.objects.filter(id__in=sample_ids)
        .order_by("-id")
        .values("id", "external_id", "email", "first_name", "last_name")
    )
    return {"count": count, "sample": sample}


def audience_explain(
    *, audience: Audience, customer: Customer, now: datetime | None = None
) -> dict:
    """Why this customer is (not) in the audience: each condition with its deciding values."""
    now = now or timezone.now()
    is_member = Membership.objects.filter(audience=audience, customer=customer).exists()
    if audience.kind != Audience.Kind.RULES:
        return {
            "audience_id": audience.id,
            "customer_id": customer.id,
            "matches": is_member,
            "is_member": is_member,
            "explanation": {"node": "list", "result": is_member},
        }
    rules = validated_rules(audience.rules)
    facts = facts_for_customers(
        workspace=audience.workspace, rules=rules, customer_ids=[customer.id]
    )
    outcome = Evaluator(rules, now=now).explain(facts[customer.id])
    matches = outcome.result and not customer.is_anonymous
    return {
        "audience_id": audience.id,
        "customer_id": customer.id,
        "matches": matches,
        "is_member": is_member,
        "explanation": outcome.as_dict(),
    }


def changes_since(
    *, audience: Audience, after: FeedPosition, limit: int
) -> tuple[list[MembershipChange], FeedPosition]:
    """The audience's enters and exits after `after` in feed order, and where the next page
    starts. Stateless, with the feed's guarantee (masivo.feeds): a change that commits after
    later ones were served comes on a later page; it is never skipped."""
    batch = feed_rows_after(
        workspace_id=audience.workspace_id, feed=MEMBERSHIP_CHANGES_FEED, after=after,
        scope=audience.id, limit=limit,
    )  # fmt: skip
    fields = MembershipChange._meta.concrete_fields
    changes = [
        MembershipChange(**{field.attname: row[field.column] for field in fields})
        for row in batch.rows
    ]
    return changes, batch.end


def change_feed_position(*, audience: Audience, change_id: int) -> FeedPosition | None:
    """Where change `change_id` of this audience sits in its feed, if it is kept and readable:
    for API clients that still page by change id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xid::text FROM audiences_membershipchange "
            "WHERE workspace_id = %s AND audience_id = %s AND id = %s "
            "AND xid < pg_snapshot_xmin(pg_current_snapshot())",
            [audience.workspace_id, audience.id, change_id],
        )
        row = cursor.fetchone()
    return None if row is None else FeedPosition(xid=int(row[0]), id=change_id)


def customer_audiences(*, customer: Customer) -> list[dict]:
    return list(
        Membership.objects.filter(customer=customer)
        .order_by("audience__name")
        .values("audience_id", "audience__name", "since", "source")
    )


# -- the dashboard's pickers and lists ----------------------------------------------------------

PICKER_CUSTOMERS_SAMPLE = 1000
PICKER_EVENTS_SAMPLE = 500
PICKER_LIMIT = 300
TRAIT_PATH_DEPTH = 3

# Every path (dots for nesting, up to `depth` levels) in a bounded sample of JSON documents,
# with the JSON type it holds most often. Below the top level a key with a dot in it cannot be
# addressed (dots separate levels), so it is left out; the CASE guards keep jsonb_each away from
# arrays and scalars.
_JSON_PATHS_SQL = """
WITH RECURSIVE sample AS MATERIALIZED ({sample}),
paths(path, value, depth) AS (
    SELECT e.key, e.value, 1
      FROM sample s,
           jsonb_each(CASE jsonb_typeof(s.document) WHEN 'object' THEN s.document
                      ELSE '{{}}'::jsonb END) e
     WHERE e.key <> '' AND (%(depth)s = 1 OR strpos(e.key, '.') = 0)
    UNION ALL
    SELECT p.path || '.' || e.key, e.value, p.depth + 1
      FROM paths p,
           jsonb_each(CASE jsonb_typeof(p.value) WHEN 'object' THEN p.value
                      ELSE '{{}}'::jsonb END) e
     WHERE p.depth < %(depth)s AND e.key <> '' AND strpos(e.key, '.') = 0
)
SELECT path, mode() WITHIN GROUP (ORDER BY jsonb_typeof(value)) FROM paths
 WHERE jsonb_typeof(value) <> 'null'
 GROUP BY path ORDER BY path COLLATE "C" LIMIT %(limit)s
"""

_RECENT_CUSTOMERS_SQL = (
    "SELECT {column} AS document FROM profiles_customer WHERE workspace_id = %(workspace)s "
    "ORDER BY updated_at DESC, id DESC LIMIT %(sample)s"
)
_RECENT_EVENTS_SQL = (
    "SELECT properties AS document FROM profiles_event "
    "WHERE workspace_id = %(workspace)s AND name = %(name)s "
    "ORDER BY occurred_at DESC LIMIT %(sample)s"
)

# Distinct names by a skip scan of the (workspace, name, occurred_at) index: one index probe
# per name, however many events there are.
_EVENT_NAMES_SQL = """
WITH RECURSIVE names(name) AS (
    (SELECT name FROM profiles_event WHERE workspace_id = %(workspace)s ORDER BY name LIMIT 1)
    UNION ALL
    SELECT (SELECT e.name FROM profiles_event e
             WHERE e.workspace_id = %(workspace)s AND e.name > n.name ORDER BY e.name LIMIT 1)
      FROM names n WHERE n.name IS NOT NULL
)
SELECT name FROM names WHERE name IS NOT NULL LIMIT %(limit)s
"""


def _json_paths(sql: str, params: dict, *, depth: int) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params | {"depth": depth, "limit": PICKER_LIMIT})
        return [{"path": path, "type": kind} for path, kind in cursor.fetchall()]


def profile_keys_seen(*, workspace, sample: int = PICKER_CUSTOMERS_SAMPLE) -> dict[str, list]:
    """Tag keys and trait paths in the most recently updated customers, for the field picker.

    A sample, not a census: keys that only older profiles carry do not show (they can still be
    typed). Tag keys are one level (a tag key may hold dots); trait paths go 3 levels deep.
    """
    params = {"workspace": workspace.id, "sample": sample}
    found = {}
    for column, depth in (("tags", 1), ("traits", TRAIT_PATH_DEPTH)):
        recent = _RECENT_CUSTOMERS_SQL.format(column=column)
        found[column] = _json_paths(_JSON_PATHS_SQL.format(sample=recent), params, depth=depth)
    return found


def event_names_seen(*, workspace, limit: int = PICKER_LIMIT) -> list[str]:
    """The workspace's event names, sorted regardless of case (the first `limit` of them)."""
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_NAMES_SQL, {"workspace": workspace.id, "limit": limit})
        return sorted(
            (row[0] for row in cursor.fetchall()), key=lambda name: (name.casefold(), name)
        )


def event_property_paths_seen(
    *, workspace, name: str, sample: int = PICKER_EVENTS_SAMPLE
) -> list[dict]:
    """Property paths of the latest `sample` events named `name`, for the property picker."""
    params = {"workspace": workspace.id, "name": name, "sample": sample}
    sql = _JSON_PATHS_SQL.format(sample=_RECENT_EVENTS_SQL)
    return _json_paths(sql, params, depth=TRAIT_PATH_DEPTH)


# The last `runs` succeeded recalculations of each audience: a short backward walk of the
# (workspace, audience, -id) index per audience.
_SIZE_HISTORY_SQL = """
SELECT a.id, r.finished_at, r.size
  FROM unnest(%(audiences)s::bigint[]) AS a(id)
  CROSS JOIN LATERAL (
      SELECT finished_at, size, id FROM audiences_recalculation
       WHERE workspace_id = %(workspace)s AND audience_id = a.id AND status = 'succeeded'
       ORDER BY id DESC LIMIT %(runs)s
  ) r
 ORDER BY a.id, r.id
"""


def audience_size_history(
    *, workspace, audience_ids: list[int], runs: int = 30
) -> dict[int, list[tuple[datetime, int]]]:
    """Size after each of the last `runs` succeeded recalculations, oldest first, by audience."""
    history: dict[int, list[tuple[datetime, int]]] = {
        audience_id: [] for audience_id in audience_ids
    }
    if not audience_ids:
        return history
    params = {"workspace": workspace.id, "audiences": list(audience_ids), "runs": runs}
    with connection.cursor() as cursor:
        cursor.execute(_SIZE_HISTORY_SQL, params)
        for audience_id, finished_at, size in cursor.fetchall():
            history[audience_id].append((finished_at, size))
    return history


def audience_members(
    *, audience: Audience, before_customer_id: int | None = None, limit: int
) -> list[Membership]:
    """Members by customer id, newest customers first, a page after `before_customer_id`.

    Customer id order walks the (workspace, audience, customer) unique index, so every page is
    one short range scan, however large the audience.
    """
    members = Membership.objects.filter(audience=audience)
    if before_customer_id is not None:
        members = members.filter(customer_id__lt=before_customer_id)
    return list(
        members.select_related("customer")
        .only(
            "customer_id", "since", "source", "customer__first_name", "customer__last_name",
            "customer__email", "customer__external_id", "customer__is_anonymous",
        )
        .order_by("-customer_id")[:limit]
    )  # fmt: skip


def changes_recent(*, audience: Audience, limit: int) -> list[MembershipChange]:
    """The latest enters and exits, newest first."""
    return list(MembershipChange.objects.filter(audience=audience).order_by("-id")[:limit])


def recalculations_recent(*, audience: Audience, limit: int) -> list[Recalculation]:
    return list(Recalculation.objects.filter(audience=audience).order_by("-id")[:limit])


def recalculations_list(*, audience: Audience) -> QuerySet[Recalculation]:
    """The audience's runs, newest first."""
    return Recalculation.objects.filter(audience=audience).order_by("-id")


def audiences_list() -> QuerySet[Audience]:
    """The workspace's audiences by name."""
    return Audience.objects.order_by("name", "id")


def audience_names(*, ids) -> dict[int, str]:
    """id → name of these audiences of the workspace (a missing one is left out)."""
    return dict(Audience.objects.filter(id__in=list(ids)).values_list("id", "name"))


def list_uploads_list(*, audience: Audience) -> QuerySet[ListUpload]:
    """The uploads into a list audience, newest first."""
    return ListUpload.objects.filter(audience=audience).order_by("-created_at", "-id")


def audiences_by_size() -> QuerySet[Audience]:
    """The workspace's audiences, largest first (the overview)."""
    return Audience.objects.order_by("-size", "name", "id")


def recalculations_latest(*, limit: int) -> list[Recalculation]:
    """The workspace's latest runs of any audience, newest first, with their audience."""
    return list(Recalculation.objects.select_related("audience").order_by("-id")[:limit])


def list_uploads_latest(*, limit: int) -> list[ListUpload]:
    """The workspace's latest list uploads, newest first, with their audience."""
    return list(ListUpload.objects.select_related("audience").order_by("-id")[:limit])


def audiences_by_name() -> QuerySet[Audience]:
    """The workspace's audiences by name as people read it: "acme" next to "Acme", not after
    "Zeta" (the database's collation may sort capitals first)."""
    return Audience.objects.order_by(Lower("name"), "name", "id")
