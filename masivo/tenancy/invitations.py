"""Invitations: the one way a person joins an organization (writes; reads are in selectors).

The link carries a random token, signed so that a mangled link is refused before any query;
only the token's SHA-256 is stored, so the table cannot be turned back into working links.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from masivo.tenancy.actors import Actor
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed, RateLimited, Unavailable
from masivo.tenancy.models import Invitation, Member, Organization
from masivo.tenancy.redis import hit_counter
from masivo.tenancy.roles import Permission, Role

logger = logging.getLogger(__name__)

_SIGNER_SALT = "masivo.tenancy.invitation"
_RATE_WINDOW_SECONDS = 3600


def email_normalize(email: str) -> str:
    email = email.strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError as error:
        raise InvalidInput("enter a valid email address", field="email") from error
    return email


def token_hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def link_token_unsign(link_token: str) -> str | None:
    """The raw token of a link, or None when the signature does not match."""
    try:
        return signing.Signer(salt=_SIGNER_SALT).unsign(link_token)
    except signing.BadSignature:
        return None


def _link_token_new() -> tuple[str, str]:
    raw = secrets.token_urlsafe(32)
    return signing.Signer(salt=_SIGNER_SALT).sign(raw), token_hash(raw)


def _require_may_invite(actor: Actor, role: str) -> None:
    if not actor.can(Permission.MANAGE_MEMBERS):
        raise NotAllowed(f"the {actor.role} role may not manage members")
    if role not in Role.values:
        raise InvalidInput(f"role is one of {', '.join(Role.values)}", field="role")
    if role == Role.OWNER and not actor.can(Permission.MANAGE_ORGANIZATION):
        raise NotAllowed("only owners can invite owners", field="role")


def _rate_limit_count(organization: Organization) -> None:
    """Count one invitation email for the organization; refuse past the hourly limit.

    Like the API's rate limit, an unreachable Redis lets the invitation through.
    """
    key = f"{settings.MASIVO_REDIS_PREFIX}ratelimit:invitations:{organization.id}"
    try:
        hits, retry_after = hit_counter(key, window_seconds=_RATE_WINDOW_SECONDS)
    except redis.RedisError:
        logger.warning("invitation rate limit skipped: Redis unavailable", exc_info=True)
        return
    if hits > settings.MASIVO_INVITATIONS_PER_HOUR:
        minutes = -(-retry_after // 60)
        raise RateLimited(
            f"{organization.name} has sent {settings.MASIVO_INVITATIONS_PER_HOUR} invitations "
            f"this hour; try again in {minutes} minute{'s' if minutes != 1 else ''}",
            retry_after=retry_after,
        )


def _email_send(invitation: Invitation, *, link: str, inviter_name: str) -> None:
    context = {"invitation": invitation, "link": link, "inviter_name": inviter_name}
    subject = render_to_string("registration/invitation_subject.txt", context).strip()
    body = render_to_string("registration/invitation_email.txt", context)
    try:
        send_mail(subject, body, None, [invitation.email])
    except (smtplib.SMTPException, OSError) as error:
        logger.exception("invitation email to organization %s failed", invitation.organization_id)
        raise Unavailable("the invitation email could not be sent; try again later") from error


def invitation_send(
    *,
    organization: Organization,
    email: str,
    role: str,
    actor: Actor,
    site_url: str,
    now: datetime | None = None,
) -> Invitation:
    """Invite an email to the organization, or refresh its open invitation (new link, new
    expiry, the new role). The answer never depends on whether the email has an account.

    The email is sent inside the transaction: if the mail server refuses it, no invitation is
    left behind that nobody received.
    """
    _require_may_invite(actor, role)
    email = email_normalize(email)
    if organization.members.filter(
        Q(user__email__iexact=email) | Q(user__username__iexact=email)
    ).exists():
        raise Conflict(f"{email} is already a member", field="email")
    _rate_limit_count(organization)
    now = now or timezone.now()
    link_token, hashed = _link_token_new()
    fields = {
        "role": role,
        "invited_by_id": actor.user_id,
        "token_hash": hashed,
        "expires_at": now + timedelta(days=settings.MASIVO_INVITATION_DAYS),
    }
    try:
        with transaction.atomic():
            invitation = (
                Invitation.objects.select_for_update()
                .filter(organization=organization, email__iexact=email)
                .filter(accepted_at__isnull=True, revoked_at__isnull=True)
                .first()
            )
            if invitation is None:
                invitation = Invitation(
                    organization=organization, email=email, created_at=now, **fields
                )
            else:
                for name, value in fields.items():
                    setattr(invitation, name, value)
            invitation.save()
            link = site_url.rstrip("/") + reverse("invitation_accept", args=[link_token])
            inviter = invitation.invited_by
            inviter_name = (inviter.get_full_name() or inviter.email) if inviter else ""
            _email_send(invitation, link=link, inviter_name=inviter_name)
    except IntegrityError as error:  # a concurrent invitation of the same email won
        raise Conflict(f"an invitation to {email} was just sent", field="email") from error
    return invitation


def invitation_revoke(
    *, invitation: Invitation, actor: Actor, now: datetime | None = None
) -> Invitation:
    """Withdraw an open invitation; its link stops working. Revoking twice is a no-op."""
    if not actor.can(Permission.MANAGE_MEMBERS):
        raise NotAllowed(f"the {actor.role} role may not manage members")
    if invitation.role == Role.OWNER and not actor.can(Permission.MANAGE_ORGANIZATION):
        raise NotAllowed("only owners can revoke an invitation to be an owner")
    now = now or timezone.now()
    Invitation.objects.filter(id=invitation.id, accepted_at__isnull=True).filter(
        revoked_at__isnull=True
    ).update(revoked_at=now)
    invitation.refresh_from_db(fields=["accepted_at", "revoked_at"])
    if invitation.accepted_at is not None:
        raise Conflict("this invitation was already accepted")
    return invitation


def invitation_closed_reason(invitation: Invitation, *, now: datetime | None = None) -> str:
    """Why a link no longer works ("" while it does)."""
    now = now or timezone.now()
    if invitation.revoked_at is not None:
        return "this invitation was withdrawn"
    if invitation.accepted_at is not None:
        return "this invitation has already been used"
    if invitation.expires_at <= now:
        return "this invitation has expired; ask for a new one"
    return ""


def _claim(invitation: Invitation, *, user, now: datetime) -> None:
    """Mark the invitation used, once: a conditional UPDATE, so two tabs cannot both win."""
    claimed = (
        Invitation.objects.filter(id=invitation.id, accepted_at__isnull=True)
        .filter(revoked_at__isnull=True, expires_at__gt=now)
        .update(accepted_at=now, accepted_by=user)
    )
    if not claimed:
        invitation.refresh_from_db()
        raise Conflict(invitation_closed_reason(invitation, now=now) or "invitation closed")


def _email_of(user) -> str:
    return (user.email or user.username).strip().lower()


def invitation_accept(*, invitation: Invitation, user, now: datetime | None = None) -> Member:
    """The signed-in `user` joins with the invited role (an existing member keeps theirs)."""
    if _email_of(user) != invitation.email:
        raise NotAllowed(
            f"this invitation is for {invitation.email}, but you are signed in as "
            f"{_email_of(user)}: sign out, then open the link again",
            code="wrong_account",
        )
    now = now or timezone.now()
    with transaction.atomic():
        _claim(invitation, user=user, now=now)
        member, _ = Member.objects.get_or_create(
            organization_id=invitation.organization_id,
            user=user,
            defaults={"role": invitation.role},
        )
    return member


def account_exists(email: str) -> bool:
    return (
        get_user_model().objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).exists()
    )


def invitation_accept_with_new_account(
    *, invitation: Invitation, name: str, password: str, now: datetime | None = None
) -> Member:
    """Create the invitee's account (username and email: the invited email) and join."""
    name = name.strip()
    if not name:
        raise InvalidInput("enter your name", field="name")
    if account_exists(invitation.email):
        raise Conflict(
            f"an account for {invitation.email} already exists: sign in (or reset your "
            "password) to accept",
            code="account_exists",
        )
    first_name, _, last_name = name.partition(" ")
    User = get_user_model()
    user = User(
        username=invitation.email,
        email=invitation.email,
        first_name=first_name[:150],
        last_name=last_name.strip()[:150],
    )
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as error:
        raise InvalidInput(" ".join(error.messages), field="password") from error
    user.set_password(password)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            user.save()
            _claim(invitation, user=user, now=now)
            return Member.objects.create(
                organization_id=invitation.organization_id, user=user, role=invitation.role
            )
    except IntegrityError as error:  # the same email signed up a moment ago
        raise Conflict(
            f"an account for {invitation.email} already exists: sign in to accept",
            code="account_exists",
        ) from error
