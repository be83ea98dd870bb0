"""Writes on customer profiles: create/upsert, update, tags, identify, merge, delete, erase."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from masivo.tenancy.errors import Conflict, InvalidInput
from masivo.tenancy.models import Workspace
from profiles import normalize
from profiles.changes import ANYTHING, customer_changed, customer_snapshot, profile_changes_record
from profiles.consent import combine_consent, combine_consent_string
from profiles.fields import PROFILE_FIELDS, clean_profile_fields
from profiles.metrics import customers_refresh_metrics
from profiles.models import (
    ConsentChange,
    Customer,
    CustomerMerge,
    Device,
    ErasureTombstone,
    Event,
    Identity,
    ProfileChange,
)
from profiles.removal import Departure, customers_depart
from profiles.services.settings import profile_settings_get

UPSERT_KEYS = ("external_id", "email")
CHANGE_SOURCE = "customers"  # on profile changes written here (API, dashboard, identify)


@dataclass(frozen=True)
class ProfileInput:
    fields: dict[str, Any]
    traits: dict | None = None
    tags: dict | None = None


def clean_profile_input(data: dict) -> ProfileInput:
    if not isinstance(data, dict):
        raise InvalidInput("must be a JSON object")
    unknown = set(data) - set(PROFILE_FIELDS) - {"traits", "tags", "is_anonymous"}
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput("unknown field", field=field)
    return ProfileInput(
        fields=clean_profile_fields(data),
        traits=normalize.clean_object(data["traits"], field="traits") if "traits" in data else None,
        tags=normalize.clean_tags(data["tags"]) if "tags" in data else None,
    )


def identifier_hash(workspace_id: int, kind: str, value: str) -> str:
    return hashlib.sha256(f"{workspace_id}:{kind}:{value}".encode()).hexdigest()


def is_erased(*, workspace_id: int, kind: str, value: str) -> bool:
    digest = identifier_hash(workspace_id, kind, value)
    return ErasureTombstone.objects.filter(identifier_hash=digest).exists()


def _apply(customer: Customer, profile: ProfileInput, *, now: datetime) -> None:
    for name, value in profile.fields.items():
        setattr(customer, name, value)
    if profile.traits is not None:
        customer.traits = {**customer.traits, **profile.traits}
    if profile.tags is not None:
        customer.tags = {**customer.tags, **profile.tags}
    if customer.external_id or customer.email:
        customer.is_anonymous = False
    customer.updated_at = now


def _save(customer: Customer, *, before: dict | None) -> Customer:
    """Save, and record what changed since `before` (None: a new customer) in the outbox."""
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as error:
        field = "email" if "email" in str(error) else "external_id"
        raise Conflict(f"another customer has this {field}", field=field) from error
    customer_changed(before=before, customer=customer, source=CHANGE_SOURCE)
    return customer


def _refuse_erased(workspace: Workspace, fields: dict) -> None:
    for kind in UPSERT_KEYS:
        if fields.get(kind) and is_erased(workspace_id=workspace.id, kind=kind, value=fields[kind]):
            raise Conflict(f"this {kind} belongs to an erased customer", field=kind, code="erased")


@transaction.atomic
def customer_upsert(
    *, workspace: Workspace, data: dict, now: datetime | None = None
) -> tuple[Customer, bool]:
    """Create, or update the customer with the same external_id (else the same email).

    Without either id the customer is anonymous. Returns (customer, created).
    """
    now = now or timezone.now()
    profile = clean_profile_input(data)
    _refuse_erased(workspace, profile.fields)
    customer = None
    for key in UPSERT_KEYS:
        if profile.fields.get(key):
            customer = (
                Customer.objects.select_for_update().filter(**{key: profile.fields[key]}).first()
            )
            if customer:
                break
    new_external_id = profile.fields.get("external_id")
    if (
        customer
        and customer.external_id
        and new_external_id
        and customer.external_id != new_external_id
    ):
        # Matched by email, but the body names another external id: never silently re-key.
        raise Conflict("this email belongs to a customer with another external_id", field="email")
    created = customer is None
    before = None if created else customer_snapshot(customer)
    if created:
        customer = Customer(workspace=workspace, created_at=now, is_anonymous=True)
    _apply(customer, profile, now=now)
    return _save(customer, before=before), created


@transaction.atomic
def customer_update(*, customer: Customer, data: dict, now: datetime | None = None) -> Customer:
    profile = clean_profile_input(data)
    _refuse_erased(customer.workspace, profile.fields)
    customer = Customer.objects.select_for_update().get(id=customer.id)
    before = customer_snapshot(customer)
    _apply(customer, profile, now=now or timezone.now())
    return _save(customer, before=before)


@transaction.atomic
def customer_tags_patch(*, customer: Customer, tags: Any) -> Customer:
    cleaned = normalize.clean_tags(tags)
    customer = Customer.objects.select_for_update().get(id=customer.id)
    before = customer_snapshot(customer)
    customer.tags = {**customer.tags, **cleaned}
    if len(customer.tags) > normalize.MAX_TAGS:
        raise InvalidInput(f"at most {normalize.MAX_TAGS} tags", field="tags")
    customer.updated_at = timezone.now()
    customer.save(update_fields=["tags", "updated_at"])
    customer_changed(before=before, customer=customer, source=CHANGE_SOURCE)
    return customer


@transaction.atomic
def customer_tags_delete(*, customer: Customer, keys: list[str] | None) -> Customer:
    """Remove the named tags, or all of them when `keys` is None."""
    customer = Customer.objects.select_for_update().get(id=customer.id)
    before = customer_snapshot(customer)
    customer.tags = (
        {} if keys is None else {k: v for k, v in customer.tags.items() if k not in keys}
    )
    customer.updated_at = timezone.now()
    customer.save(update_fields=["tags", "updated_at"])
    customer_changed(before=before, customer=customer, source=CHANGE_SOURCE)
    return customer


@transaction.atomic
def customer_identify(
    *, customer: Customer, external_id: str | None = None, email: str | None = None, actor: str
) -> Customer:
    """Make an anonymous customer known. If the id belongs to someone else (or is an alias of
    someone), merge into them. A customer that is already known is a conflict."""
    if not customer.is_anonymous:
        raise Conflict("this customer is already identified", code="already_identified")
    fields = clean_profile_fields({"external_id": external_id, "email": email})
    fields = {key: value for key, value in fields.items() if value}
    if not fields:
        raise InvalidInput("give an external_id or an email", field="external_id")
    _refuse_erased(customer.workspace, fields)
    for key, value in fields.items():
        known = Customer.objects.filter(**{key: value}).exclude(id=customer.id).first()
        if known is None and key == "external_id":
            alias = Identity.objects.filter(kind=Identity.Kind.ALIAS, value=value).first()
            known = alias.customer if alias and alias.customer_id != customer.id else None
        if known:
            customers_merge(winner=known, loser=customer, reason="identify", actor=actor)
            return Customer.objects.get(id=known.id)
    customer = Customer.objects.select_for_update().get(id=customer.id)
    before = customer_snapshot(customer)
    for key, value in fields.items():
        setattr(customer, key, value)
    customer.is_anonymous = False
    customer.updated_at = timezone.now()
    return _save(customer, before=before)


def _fill(winner: Customer, loser: Customer) -> None:
    """The winner keeps its values; the loser's fill the winner's blanks."""
    for name in PROFILE_FIELDS:
        if name in ("external_id", "email"):
            continue
        if getattr(winner, name) in (None, "") and getattr(loser, name) not in (None, ""):
            setattr(winner, name, getattr(loser, name))
    winner.traits = {**loser.traits, **winner.traits}
    winner.tags = {**loser.tags, **winner.tags}
    winner.consent = combine_consent(winner.consent, loser.consent)
    winner.consent_vendors = combine_consent(winner.consent_vendors, loser.consent_vendors)
    winner.consent_string, winner.consent_string_version = combine_consent_string(winner, loser)
    winner.created_at = min(winner.created_at, loser.created_at)
    if loser.last_seen_at and (not winner.last_seen_at or loser.last_seen_at > winner.last_seen_at):
        winner.last_seen_at = loser.last_seen_at


@transaction.atomic
def customers_merge(*, winner: Customer, loser: Customer, reason: str, actor: str) -> Customer:
    """Fold `loser` into `winner`: events, devices, identities and consent history move over,
    the loser's external id becomes an alias, and the merge is audited. Nothing is lost."""
    if winner.id == loser.id:
        return winner
    first, second = sorted([winner.id, loser.id])
    locked = {c.id: c for c in Customer.objects.select_for_update().filter(id__in=[first, second])}
    winner, loser = locked[winner.id], locked[loser.id]
    settings = profile_settings_get(workspace=winner.workspace)
    identities = Identity.objects.filter(customer_id__in=[winner.id, loser.id]).count()
    if identities + 1 > settings.max_identities_per_customer:
        raise Conflict(
            f"merging would give one customer more than {settings.max_identities_per_customer} "
            "identities (is an id shared between people?)",
            code="merge_limit",
        )
    snapshot = json.loads(json.dumps(model_to_dict(loser), cls=DjangoJSONEncoder))
    Event.objects.filter(customer_id=loser.id).update(customer_id=winner.id)
    Device.objects.filter(customer_id=loser.id).update(customer_id=winner.id)
    Identity.objects.filter(customer_id=loser.id).update(customer_id=winner.id)
    ConsentChange.objects.filter(customer_id=loser.id).update(customer_id=winner.id)
    loser_external_id, loser_email = loser.external_id, loser.email
    _fill(winner, loser)
    if not winner.email and loser_email:
        Customer.objects.filter(id=loser.id).update(email=None)
        winner.email = loser_email
    winner.is_anonymous = not (winner.external_id or winner.email)
    winner.updated_at = timezone.now()
    CustomerMerge.objects.create(
        workspace_id=winner.workspace_id,
        winner=winner,
        loser_id=loser.id,
        loser_snapshot=snapshot,
        reason=reason,
        actor=actor,
    )
    winner.save()
    if loser_external_id and loser_external_id != winner.external_id:
        Identity.objects.get_or_create(
            workspace_id=winner.workspace_id,
            kind=Identity.Kind.ALIAS,
            value=loser_external_id,
            defaults={"customer": winner},
        )
    customers_refresh_metrics(workspace=winner.workspace, customer_ids=[winner.id])
    customers_depart(
        Departure(
            workspace_id=winner.workspace_id,
            customer_ids=[loser.id],
            reason="merged",
            now=winner.updated_at,
            merged_into=winner.id,
        )
    )
    Customer.objects.filter(id=loser.id).delete()
    now = winner.updated_at
    profile_changes_record(
        workspace_id=winner.workspace_id,
        changes=[(winner.id, [ANYTHING])],
        source="merge",
        kind=ProfileChange.Kind.MERGED,
        now=now,
    )
    profile_changes_record(
        workspace_id=winner.workspace_id,
        changes=[(loser.id, [])],
        source="merge",
        kind=ProfileChange.Kind.MERGED_AWAY,
        now=now,
    )
    return winner


@transaction.atomic
def customer_delete(*, customer: Customer) -> None:
    """Delete the profile with its events, devices and identities (no tombstone: see erase)."""
    _depart(customer, reason="deleted")
    Customer.objects.filter(id=customer.id).delete()


def _depart(customer: Customer, *, reason: str) -> None:
    """Before the row goes: the layers above end what they hold, and the feed says so."""
    Customer.objects.select_for_update().filter(id=customer.id).first()
    now = timezone.now()
    customers_depart(
        Departure(
            workspace_id=customer.workspace_id, customer_ids=[customer.id], reason=reason, now=now
        )
    )
    profile_changes_record(
        workspace_id=customer.workspace_id,
        changes=[(customer.id, [])],
        source="removal",
        kind=reason,
        now=now,
    )


@transaction.atomic
def customer_erase(*, customer: Customer, actor: str) -> None:
    """Right to erasure: delete everything, and remember hashed ids so late events stay out."""
    identifiers = [("external_id", customer.external_id), ("email", customer.email)]
    identifiers += [
        ("external_id" if kind == Identity.Kind.ALIAS else "anonymous_id", value)
        for kind, value in customer.identities.values_list("kind", "value")
    ]
    tombstones = [
        ErasureTombstone(
            workspace_id=customer.workspace_id,
            identifier_hash=identifier_hash(customer.workspace_id, kind, value),
            erased_by=actor,
            customer_id_was=customer.id,
        )
        for kind, value in identifiers
        if value
    ]
    if not tombstones:
        tombstones.append(
            ErasureTombstone(
                workspace_id=customer.workspace_id,
                identifier_hash=identifier_hash(
                    customer.workspace_id, "customer", str(customer.id)
                ),
                erased_by=actor,
                customer_id_was=customer.id,
            )
        )
    ErasureTombstone.objects.bulk_create(tombstones, ignore_conflicts=True)
    anonymous_ids = [value for kind, value in identifiers if kind == "anonymous_id" and value]
    Event.objects.filter(customer__isnull=True, anonymous_id__in=anonymous_ids).delete()
    CustomerMerge.objects.filter(loser_id__in=[customer.id]).update(loser_snapshot={})
    CustomerMerge.objects.filter(winner_id=customer.id).update(loser_snapshot={})
    _depart(customer, reason="erased")
    Customer.objects.filter(id=customer.id).delete()
