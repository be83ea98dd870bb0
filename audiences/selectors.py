"""Reads on audiences: previews, explanations, members and the change feed."""

from __future__ import annotations

from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audiences.facts import facts_for_customers
from audiences.models import Audience, Membership, MembershipChange
from audiences.recalculation import compiler_for
from audiences.rules.evaluator import Evaluator
from audiences.services import validated_rules
from masivo.tenancy.errors import ServiceError
from profiles.models import Customer

PREVIEW_TIMEOUT_MS = 5000
PREVIEW_SAMPLE = 10


class PreviewTooSlow(ServiceError):
    status = 400
    code = "preview_timeout"


def audience_preview(*, workspace, rules_document, now: datetime | None = None) -> dict:
    """Count and sample of unsaved rules, bounded by a statement timeout."""
    now = now or timezone.now()
    rules = validated_rules(rules_document)
    members, params = compiler_for(workspace, now=now).members_sql(rules)
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


def changes_since(*, audience: Audience, since: int, limit: int) -> list[MembershipChange]:
    return list(
        MembershipChange.objects.filter(audience=audience, id__gt=since).order_by("id")[:limit]
    )


def customer_audiences(*, customer: Customer) -> list[dict]:
    return list(
        Membership.objects.filter(customer=customer)
        .order_by("audience__name")
        .values("audience_id", "audience__name", "since", "source")
    )
