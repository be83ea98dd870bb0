from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from masivo.tenancy.managers import TenantModel
from masivo.tenancy.roles import Role


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name


class Workspace(models.Model):
    """The tenant. A brand or an environment of an organization; every tenant row points here."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="workspaces"
    )
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="workspace_name_unique_in_organization"
            )
        ]

    def __str__(self):
        return self.name


class Member(models.Model):
    """A user's membership of an organization, with the role that decides what they may do."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("organization", "user", name="member_unique_per_organization")
        ]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.organization}"


class Invitation(models.Model):
    """An invitation to join an organization. Only the SHA-256 of the link's token is stored.

    Open while neither accepted nor revoked; at most one open invitation per email and
    organization, so inviting the same email again refreshes it.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="invitation_org_created")
        ]

    def __str__(self):
        return f"{self.email} ({self.role}) to {self.organization}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None


class ApiKey(TenantModel):
    """A workspace's API credential. Only the SHA-256 of the token and its prefix are stored."""

    class Kind(models.TextChoices):
        WRITE = "write", "Write key (public, ingestion only)"
        SECRET = "secret", "Secret key (full API)"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=100)
    role = models.CharField(
        max_length=16,
        choices=[(Role.ADMIN, "Admin"), (Role.MARKETER, "Marketer"), (Role.VIEWER, "Viewer")],
        blank=True,
        help_text="What a secret key may do; write keys have no role.",
    )
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "created_at"], name="apikey_ws_created")]

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
