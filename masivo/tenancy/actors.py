"""Who is acting: a dashboard user (through their membership) or an API key."""

from __future__ import annotations

from dataclasses import dataclass

from masivo.tenancy.roles import Permission, role_allows


@dataclass(frozen=True)
class Actor:
    role: str
    user_id: int | None = None
    api_key_id: int | None = None

    def can(self, permission: Permission) -> bool:
        return role_allows(self.role, permission)

    @property
    def label(self) -> str:
        if self.user_id is not None:
            return f"user:{self.user_id}"
        if self.api_key_id is not None:
            return f"api_key:{self.api_key_id}"
        return "system"


SYSTEM = Actor(role="owner")
