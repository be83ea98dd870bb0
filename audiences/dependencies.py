"""What a rule depends on, in the profile-change outbox's key vocabulary (profiles.changes),
computed when the rules are saved: real time re-evaluates an audience only when one of its
keys changed for a customer.

Event conditions depend on `event:<name>` (fed by the events themselves, not the outbox).
Every rule depends on `field:is_anonymous`: anonymous customers are never members, so one
becoming known may enter any audience. Referenced audiences are not keys: a membership change
re-evaluates the audiences that reference it next, in dependency order (audiences.realtime).
"""

from __future__ import annotations

from audiences.rules.ast import (
    ConsentCondition,
    DeviceCondition,
    EventCondition,
    ProfileCondition,
    Rules,
)
from profiles.changes import DEVICE, event_key, field_key

ALWAYS = "field:is_anonymous"


def rules_dependencies(rules: Rules) -> list[str]:
    keys = {ALWAYS}
    for leaf in rules.leaves():
        if isinstance(leaf, EventCondition):
            keys.add(event_key(leaf.name))
        elif isinstance(leaf, ProfileCondition):
            field = leaf.field
            if field.column in ("tags", "traits"):
                keys.add(f"{field.column}:{field.path[0]}")
            else:
                keys.add(field_key(field.column))
        elif isinstance(leaf, ConsentCondition):
            keys.add(f"consent:{leaf.purpose}")
        elif isinstance(leaf, DeviceCondition):
            keys.add(DEVICE)
    return sorted(keys)
