"""Which tables are feeds, and who consumes them.

The app that owns a feed table registers it in its `AppConfig.ready`; each consumer registers
itself the same way, under the feed it reads. Retention asks the registry whose cursors must
have passed a row before it may be deleted.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnknownFeed(LookupError):
    pass


class UnknownConsumer(LookupError):
    pass


@dataclass(frozen=True)
class Feed:
    """A feed table: `id` bigint primary key, `workspace_id`, `xid xid8` (the writing
    transaction's id, set by its default) and a timestamp column that retention ages rows by.
    With `scope_column`, consumers may follow one value of it (an audience) at a time. With
    `pending_column`, a row whose value there is NULL is still an outbox entry of the owning
    app (work not done yet): retention never deletes it, whatever its age."""

    name: str
    table: str
    age_column: str
    scope_column: str | None = None
    pending_column: str | None = None


@dataclass(frozen=True)
class Consumer:
    """A reader with a persisted cursor per workspace, or per (workspace, scope) if scoped.

    With `holds_retention`, rows are kept until its cursors have passed them (see
    `masivo.feeds.retention`); without it, the consumer accepts losing rows it was too slow for.

    With `per_key`, the consumer is a family: each member has its own cursor, named
    `<name>:<key>` (a destination's forwarding, `destinations.forwarding:<destination id>`).
    Like a scoped consumer, a family holds retention only through the cursors it has.

    With `starts_from_now`, its owner creates its cursor from now when it starts following a
    workspace (a push topic, a published journey): a workspace without one holds nothing back
    (without it, a missing cursor means "will read from the beginning" and holds everything).
    """

    name: str
    feed: str
    is_scoped: bool = False
    holds_retention: bool = True
    per_key: bool = False
    starts_from_now: bool = False


_feeds: dict[str, Feed] = {}
_consumers: dict[tuple[str, str], Consumer] = {}


def feed_register(
    *,
    name: str,
    table: str,
    age_column: str,
    scope_column: str | None = None,
    pending_column: str | None = None,
) -> Feed:
    feed = Feed(
        name=name,
        table=table,
        age_column=age_column,
        scope_column=scope_column,
        pending_column=pending_column,
    )
    if _feeds.setdefault(name, feed) != feed:
        raise ValueError(f"feed {name!r} is already registered differently")
    return feed


def feed_consumer_register(
    *,
    feed: str,
    name: str,
    is_scoped: bool = False,
    holds_retention: bool = True,
    per_key: bool = False,
    starts_from_now: bool = False,
) -> Consumer:
    """Register a consumer (in its app's `ready`; the feed may be registered after it)."""
    if ":" in name:
        raise ValueError("a consumer's name has no ':' (it separates a family's keys)")
    consumer = Consumer(
        name=name, feed=feed, is_scoped=is_scoped, holds_retention=holds_retention,
        per_key=per_key, starts_from_now=starts_from_now,
    )  # fmt: skip
    if _consumers.setdefault((feed, name), consumer) != consumer:
        raise ValueError(f"consumer {name!r} of {feed!r} is already registered differently")
    return consumer


def registered_feed(name: str) -> Feed:
    try:
        return _feeds[name]
    except KeyError:
        raise UnknownFeed(f"no feed named {name!r} is registered") from None


def registered_feeds() -> list[Feed]:
    return sorted(_feeds.values(), key=lambda feed: feed.name)


def registered_consumer(*, feed: str, name: str) -> Consumer:
    """The consumer named `name`; for a family's member (`<family>:<key>`), the family."""
    family, colon, key = name.partition(":")
    consumer = _consumers.get((feed, family))
    if consumer is None or consumer.per_key != bool(colon) or (colon and not key):
        raise UnknownConsumer(f"no consumer {name!r} of feed {feed!r} is registered")
    return consumer


def registered_consumers(*, feed: str) -> list[Consumer]:
    return sorted(
        (consumer for consumer in _consumers.values() if consumer.feed == feed),
        key=lambda consumer: consumer.name,
    )
