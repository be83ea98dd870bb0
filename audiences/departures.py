"""Customers leaving: every membership ends with an exit row (`profiles.removal` calls this
inside the removal's transaction). A merge also keeps the loser's uploaded-list memberships
on the winner and judges the winner afresh against every rules audience."""

from __future__ import annotations

from audiences.membership import (
    CAUSE_MERGE,
    CAUSE_MERGE_LIST,
    Reason,
    Source,
    membership_apply,
    memberships_end_for_customers,
)
from audiences.models import Audience, Membership
from audiences.realtime import audiences_reevaluate
from masivo.tenancy.models import Workspace
from profiles.removal import Departure


def customers_departed(departure: Departure) -> None:
    winner = departure.merged_into
    if winner is not None:
        kept = Membership.objects.filter(
            customer_id__in=departure.customer_ids, audience__kind=Audience.Kind.LIST
        ).values_list("audience_id", flat=True)
        for audience_id in sorted(set(kept)):
            membership_apply(
                workspace_id=departure.workspace_id,
                audience_id=audience_id,
                entering=[winner],
                leaving=[],
                cause=CAUSE_MERGE_LIST,
                now=departure.now,
            )
    memberships_end_for_customers(
        workspace_id=departure.workspace_id,
        customer_ids=departure.customer_ids,
        source=Source.MERGE if winner is not None else Source.REMOVAL,
        reason=Reason(departure.reason),
        now=departure.now,
    )
    if winner is not None:
        audiences_reevaluate(
            workspace=Workspace.objects.get(id=departure.workspace_id),
            audiences=list(Audience.objects.filter(kind=Audience.Kind.RULES)),
            customer_ids=[winner],
            cause=CAUSE_MERGE,
            now=departure.now,
        )
