"""Customers leaving (deleted, erased, merged away): the layers above end what they hold for
them in the same transaction, before the customer's row is deleted.

Profiles sits below audiences (and messaging, journeys, destinations), so it cannot call them.
Each of those registers one handler here when its app loads (`AppConfig.ready`), and the
removal services call every handler inside their transaction. It is the one place where a
lower layer calls up, and it is deliberate: a feed that misses a removal is wrong for every
reader (an ad audience would keep an erased customer), and an outbox read later cannot end the
memberships in the transaction that deletes the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Departure:
    workspace_id: int
    customer_ids: list[int]
    reason: str  # "deleted", "erased" or "merged"
    now: datetime
    merged_into: int | None = None  # the winner, when merged: already saved with the loser's data


DepartureHandler = Callable[[Departure], None]
_handlers: list[DepartureHandler] = []


def register_departure_handler(handler: DepartureHandler) -> None:
    if handler not in _handlers:
        _handlers.append(handler)


def customers_depart(departure: Departure) -> None:
    """Call inside the removal's transaction, while the customers' rows still exist (locked)."""
    for handler in _handlers:
        handler(departure)
