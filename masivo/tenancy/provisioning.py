"""Operator-level set-up: the demo environment of `masivo up` and `masivo workspace create`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from masivo.tenancy.errors import InvalidInput
from masivo.tenancy.models import Member, Organization, Workspace
from masivo.tenancy.roles import Role
from masivo.tenancy.services import organization_create, workspace_provision

DEMO_EMAIL = "admin@example.com"


@dataclass(frozen=True)
class DemoEnvironment:
    created: bool
    email: str = ""
    password: str = ""
    workspace: Workspace | None = None
    write_key: str = ""
    secret_key: str = ""


@transaction.atomic
def demo_environment_ensure() -> DemoEnvironment:
    """On an empty installation, create a demo organization, workspace and owner."""
    if Organization.objects.exists():
        return DemoEnvironment(created=False)
    organization = organization_create(name="Demo")
    workspace, write_key, secret_key = workspace_provision(organization=organization, name="Demo")
    password = secrets.token_urlsafe(12)
    User = get_user_model()
    user = User.objects.filter(username=DEMO_EMAIL).first() or User(
        username=DEMO_EMAIL, email=DEMO_EMAIL, first_name="Demo", last_name="Admin"
    )
    user.set_password(password)
    user.is_staff = True
    user.is_superuser = True
    user.save()
    Member.objects.create(organization=organization, user=user, role=Role.OWNER)
    return DemoEnvironment(
        created=True,
        email=DEMO_EMAIL,
        password=password,
        workspace=workspace,
        write_key=write_key.token,
        secret_key=secret_key.token,
    )


def _organization_for(name_or_slug: str | None) -> tuple[Organization, bool]:
    if name_or_slug:
        found = Organization.objects.filter(slug=name_or_slug).first() or (
            Organization.objects.filter(name__iexact=name_or_slug).order_by("id").first()
        )
        if found:
            return found, False
        return organization_create(name=name_or_slug), True
    organizations = list(Organization.objects.order_by("id")[:2])
    if len(organizations) == 1:
        return organizations[0], False
    raise InvalidInput(
        "more than one organization exists (or none): name one with --org", field="org"
    )


@transaction.atomic
def workspace_create_for_operator(
    *, name: str, organization_name: str | None, timezone_name: str = "UTC"
) -> dict:
    organization, organization_created = _organization_for(organization_name)
    workspace, write_key, secret_key = workspace_provision(
        organization=organization, name=name, timezone_name=timezone_name
    )
    return {
        "organization": {
            "id": organization.id,
            "name": organization.name,
            "slug": organization.slug,
            "created": organization_created,
        },
        "workspace": {"id": workspace.id, "name": workspace.name, "timezone": workspace.timezone},
        "keys": {
            "write": write_key.token,
            "write_key_id": write_key.api_key.id,
            "secret": secret_key.token,
            "secret_key_id": secret_key.api_key.id,
        },
    }
