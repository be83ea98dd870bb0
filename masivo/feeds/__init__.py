"""Append-only change feeds and their consumers' cursors (DESIGN.md section 9).

A feed is a table that an app writes in the same transaction as the change it records, with a
`xid xid8 DEFAULT pg_current_xact_id()` column. Readers go in (xid, id) order and stop below the
oldest transaction still running, so a row that commits late is never skipped.
"""
