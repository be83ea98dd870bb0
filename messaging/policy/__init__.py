"""THE consent-and-contact policy: one decision per (customer, channel, kind, time), in
Python for one customer (`contact_decide`) and in SQL for an audience
(`policy_decisions_sql`), held to the same answers by tests. messaging.outbox records it on
every message it creates."""

from messaging.policy.decide import contact_decide
from messaging.policy.sql import (
    contact_decide_many,
    contact_decisions_count,
    policy_decisions_sql,
)
from messaging.policy.vocabulary import DECISION_CODES, Decision

__all__ = [
    "DECISION_CODES",
    "Decision",
    "contact_decide",
    "contact_decide_many",
    "contact_decisions_count",
    "policy_decisions_sql",
]
