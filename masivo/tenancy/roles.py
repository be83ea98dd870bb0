"""Roles and what each may do. One table, read by the API, the dashboard and the services."""

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MARKETER = "marketer", "Marketer"
    VIEWER = "viewer", "Viewer"


class Permission(StrEnum):
    READ = "read"
    EDIT_MARKETING = "edit_marketing"  # audiences, journeys, templates, customers
    MANAGE_WORKSPACE = "manage_workspace"  # workspace settings
    MANAGE_KEYS = "manage_keys"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_DESTINATIONS = "manage_destinations"
    MANAGE_ORGANIZATION = "manage_organization"  # owners: billing, owners, deleting workspaces


_VIEWER = {Permission.READ}
_MARKETER = _VIEWER | {Permission.EDIT_MARKETING}
_ADMIN = _MARKETER | {
    Permission.MANAGE_WORKSPACE,
    Permission.MANAGE_KEYS,
    Permission.MANAGE_MEMBERS,
    Permission.MANAGE_DESTINATIONS,
}
_OWNER = _ADMIN | {Permission.MANAGE_ORGANIZATION}

PERMISSIONS: dict[str, frozenset[Permission]] = {
    Role.VIEWER: frozenset(_VIEWER),
    Role.MARKETER: frozenset(_MARKETER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.OWNER: frozenset(_OWNER),
}

RANK = {Role.VIEWER: 0, Role.MARKETER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_allows(role: str, permission: Permission) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def role_at_least(role: str, other: str) -> bool:
    return RANK[Role(role)] >= RANK[Role(other)]
