"""The hand-written diff an incremental Meta sync needs: which customers to add, with their
hashed identifiers, and which to remove, with the identifiers the destination holds.

One read-only statement: today's consented members with their SHA-256 email and phone (Meta's
rules: the stored email as it is, the phone's digits without `+`), FULL OUTER JOINed with
what the record says was sent. A row is an add where the member's identifiers differ from
what was sent (new member, or a changed email), a remove where something was sent that
differs from what is wanted (left, or changed). The same consent decisions as the engine
under this workspace's settings: opt-in, advertising granted, no vendor decision required
(only a recorded denial of vendor `vendor` stops a customer).
"""

from __future__ import annotations

DIFF_SQL = """
WITH wanted AS (
    SELECT c.id AS customer_id,
           jsonb_strip_nulls(jsonb_build_object(
               'email', encode(sha256(convert_to(c.email, 'UTF8')), 'hex'),
               'phone', encode(sha256(convert_to(ltrim(c.phone, '+'), 'UTF8')), 'hex'))) AS ids
      FROM audiences_membership m
      JOIN profiles_customer c ON c.id = m.customer_id
     WHERE m.workspace_id = %(workspace)s AND m.audience_id = %(audience)s
       AND c.workspace_id = %(workspace)s
       AND c.consent -> 'advertising' ->> 'status' = 'granted'
       AND coalesce(c.consent_vendors -> %(vendor)s ->> 'status', 'granted') = 'granted'
       AND (c.email IS NOT NULL OR c.phone IS NOT NULL)
), held AS (
    SELECT customer_id, sent FROM destinations_syncrecord
     WHERE workspace_id = %(workspace)s AND sync_id = %(sync)s AND sent IS NOT NULL
)
SELECT coalesce(w.customer_id, h.customer_id), w.ids AS add, h.sent AS remove
  FROM wanted w FULL JOIN held h ON h.customer_id = w.customer_id
 WHERE w.ids IS DISTINCT FROM h.sent
"""
