"""Each worker's copy of a workspace's real-time index: which real-time audiences a changed
key touches (audiences.dependencies), their parsed rules, the references between them, and the
workspace's consent regime (the only setting the rules read).

Reading the audiences and the settings again for every batch cost two statements out of the
eight real time ran per event; the copy saves them. It is never trusted on its own: it carries
a fingerprint of what it was built from, and real time compares it with the fingerprint the
database computes inside its evaluation statement (`FINGERPRINT_SQL`), discarding the answer
and building the copy again when they differ. The fingerprint is computed from the rows
themselves (each real-time rules audience's id, version, rules and dependencies, and the
regime), not from a counter that writers bump, so no writer can forget it: the services, a
migration's backfill, the admin or a hand-written UPDATE all change it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import ProgrammingError, connection

from audiences.rules.ast import Rules, parse_rules
from profiles.changes import ANYTHING
from profiles.models import ProfileSettings

MAX_WORKSPACES = 256  # copies kept per process, least recently used dropped

# One md5 over the real-time rules audiences (in id order) and the consent regime: equal
# fingerprints mean equal rules, dependencies, references and regime. `%(workspace)s` is bound
# by the statement that embeds it.
FINGERPRINT_SQL = """(SELECT md5(coalesce(string_agg(
        a.id::text || ':' || a.version::text || ':' || md5(a.rules::text) || ':'
        || a.dependencies::text || ':' || a.depends_on::text, ',' ORDER BY a.id), '')
        || ':' || coalesce((SELECT s.consent_regime FROM profiles_profilesettings s
                             WHERE s.workspace_id = %(workspace)s), ''))
   FROM audiences_audience a
  WHERE a.workspace_id = %(workspace)s AND a.is_realtime AND a.kind = 'rules')"""

_LOAD_SQL = f"""
SELECT {FINGERPRINT_SQL},
       (SELECT s.consent_regime FROM profiles_profilesettings s
         WHERE s.workspace_id = %(workspace)s),
       coalesce((SELECT json_agg(json_build_array(a.id, a.rules, a.dependencies, a.depends_on)
                                 ORDER BY a.id)
                   FROM audiences_audience a
                  WHERE a.workspace_id = %(workspace)s AND a.is_realtime
                    AND a.kind = 'rules'), '[]')
"""  # noqa: S608 (constants only)


@dataclass(frozen=True)
class IndexedAudience:
    id: int
    rules: Rules
    dependencies: frozenset[str]
    references: frozenset[int]  # audiences its rules name (real-time or not)


@dataclass
class RealtimeIndex:
    workspace_id: int
    fingerprint: str
    consent_opt_out: bool
    audiences: dict[int, IndexedAudience]  # referenced before referencing (dependency order)
    by_key: dict[str, set[int]] = field(default_factory=dict)
    dependents: dict[int, set[int]] = field(default_factory=dict)  # who references an audience

    def touched(self, keys: set[str]) -> list[IndexedAudience]:
        """The audiences that depend on any of these keys, and (transitively) the audiences
        that reference those, in dependency order."""
        if ANYTHING in keys:
            return list(self.audiences.values())
        chosen = set().union(*(self.by_key.get(key, ()) for key in keys))
        stack = list(chosen)
        while stack:
            for dependent in self.dependents.get(stack.pop(), ()):
                if dependent not in chosen:
                    chosen.add(dependent)
                    stack.append(dependent)
        return [audience for id_, audience in self.audiences.items() if id_ in chosen]


def _index_from_rows(workspace_id: int, fingerprint: str, regime, rows) -> RealtimeIndex:
    parsed = {
        id_: IndexedAudience(
            id=id_,
            rules=(rules := parse_rules(document)),
            dependencies=frozenset(dependencies),
            references=frozenset(rules.audience_ids),
        )
        for id_, document, dependencies, _ in rows
    }
    ordered: dict[int, IndexedAudience] = {}

    def visit(audience: IndexedAudience) -> None:
        if audience.id in ordered:
            return
        for reference in sorted(audience.references):
            if reference in parsed:
                visit(parsed[reference])
        ordered[audience.id] = audience

    for id_ in sorted(parsed):
        visit(parsed[id_])
    index = RealtimeIndex(
        workspace_id=workspace_id,
        fingerprint=fingerprint,
        consent_opt_out=(regime or _DEFAULT_REGIME) == ProfileSettings.ConsentRegime.OPT_OUT,
        audiences=ordered,
    )
    for audience in ordered.values():
        for key in audience.dependencies:
            index.by_key.setdefault(key, set()).add(audience.id)
        for reference in audience.references:
            index.dependents.setdefault(reference, set()).add(audience.id)
    return index


# A workspace without a settings row has the defaults (profile_settings_get creates it so).
_DEFAULT_REGIME = ProfileSettings._meta.get_field("consent_regime").default

_lock = threading.Lock()
_copies: OrderedDict[int, RealtimeIndex] = OrderedDict()


def realtime_index_cached(workspace_id: int) -> RealtimeIndex | None:
    """This process's copy, if any (possibly stale: compare its fingerprint)."""
    with _lock:
        index = _copies.get(workspace_id)
        if index is not None:
            _copies.move_to_end(workspace_id)
        return index


def realtime_index_load(workspace_id: int) -> RealtimeIndex:
    """Build the copy from the database (one statement) and keep it."""
    with connection.cursor() as cursor:
        cursor.execute(_LOAD_SQL, {"workspace": workspace_id})
        fingerprint, regime, rows = cursor.fetchone()
    if isinstance(rows, str):  # json, as Django's connection hands it over
        rows = json.loads(rows)
    index = _index_from_rows(workspace_id, fingerprint, regime, rows)
    with _lock:
        _copies[workspace_id] = index
        _copies.move_to_end(workspace_id)
        while len(_copies) > MAX_WORKSPACES:
            _copies.popitem(last=False)
    return index


def realtime_index_fingerprint(workspace_id: int) -> str:
    """What the fingerprint of the workspace's index is now."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {FINGERPRINT_SQL}", {"workspace": workspace_id})
        return cursor.fetchone()[0]


def realtime_index_forget(workspace_id: int | None = None) -> None:
    """Drop this process's copy of one workspace (None: all)."""
    with _lock:
        if workspace_id is None:
            _copies.clear()
        else:
            _copies.pop(workspace_id, None)


# -- prepared statements --------------------------------------------------------------------
#
# Planning real time's statement took longer than running it (3.6 ms against 1-4 ms for the
# ten audiences a purchase touches). Its text is the same for every batch that touches the same
# audiences (every value is a parameter), so each connection prepares it once and executes it
# after that. Prepared statements live in the server session, survive a rollback, and are
# tracked here per connection object (a reconnect starts empty).

PREPARED_MAX = 64  # per connection; the least recently used is deallocated

_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")  # a literal % is doubled


def _parameter_type(value) -> str | None:
    """The declared type of a bound value (None: not preparable, run the statement as is)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, Decimal):
        return "numeric"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "timestamptz" if value.tzinfo is not None else None
    if isinstance(value, date):
        return "date"
    if isinstance(value, list | tuple):
        kinds = {_parameter_type(item) for item in value}
        if not kinds:
            return "text[]"  # an empty array: the statement casts it
        kind = kinds.pop()
        return f"{kind}[]" if not kinds and kind and not kind.endswith("]") else None
    return None


def execute_prepared(cursor, sql: str, params: dict) -> None:
    """`cursor.execute(sql, params)` (named placeholders), through a prepared statement of
    this connection. `MASIVO_REALTIME_PREPARED_STATEMENTS = False` (a setting) runs it as is:
    behind a proxy that pools transactions, a session's prepared statements are not there."""
    order = list(dict.fromkeys(name for name in _PLACEHOLDER.findall(sql) if name))
    types = [_parameter_type(params[name]) for name in order]
    if None in types or not getattr(settings, "MASIVO_REALTIME_PREPARED_STATEMENTS", True):
        cursor.execute(sql, params)
        return
    numbers = {name: f"${number}" for number, name in enumerate(order, start=1)}
    text = _PLACEHOLDER.sub(lambda match: numbers[match.group(1)] if match.group(1) else "%", sql)
    digest = hashlib.md5(f"{types}{text}".encode(), usedforsecurity=False).hexdigest()
    name = f"masivo_rt_{digest[:24]}"
    raw = cursor.db.connection
    with _lock:
        known = _prepared.setdefault(raw, OrderedDict())
        is_prepared = name in known
        if is_prepared:
            known.move_to_end(name)
    if not is_prepared:
        cursor.execute(f"PREPARE {name} ({', '.join(types)}) AS {text}")
        with _lock:
            known[name] = None
            evicted = known.popitem(last=False)[0] if len(known) > PREPARED_MAX else None
        if evicted:
            cursor.execute(f"DEALLOCATE {evicted}")
    try:
        cursor.execute(
            f"EXECUTE {name} ({', '.join(['%s'] * len(order))})", [params[n] for n in order]
        )
    except ProgrammingError:
        # e.g. deallocated behind our back (DISCARD ALL): forget this connection's list; the
        # caller's transaction fails and its retry prepares again.
        with _lock:
            _prepared.pop(raw, None)
        raise
