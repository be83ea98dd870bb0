"""The operator admin, for staff users.

Tenant tables (ApiKey) live under row-level security, so every admin page opens the all-workspaces
escape hatch for exactly as long as it runs: the key pages need it to list keys, and deleting a
workspace or organization needs it so the cascade can see the rows it must delete. Keys are
read-only here except for revoking.
"""

from django.contrib import admin, messages

from masivo.tenancy import services
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import all_workspaces
from masivo.tenancy.models import ApiKey, Member, Organization, Workspace
from masivo.tenancy.roles import Role

OPERATOR = "operator admin"


def _rendered(response):
    """Admin pages are TemplateResponses rendered after the view returns: render them now."""
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    return response


class OperatorAdmin(admin.ModelAdmin):
    """Runs each page inside all_workspaces(); lazy querysets are evaluated within it."""

    def changelist_view(self, request, extra_context=None):
        with all_workspaces(reason=OPERATOR):
            return _rendered(super().changelist_view(request, extra_context))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with all_workspaces(reason=OPERATOR):
            return _rendered(super().changeform_view(request, object_id, form_url, extra_context))

    def history_view(self, request, object_id, extra_context=None):
        with all_workspaces(reason=OPERATOR):
            return _rendered(super().history_view(request, object_id, extra_context))

    def delete_view(self, request, object_id, extra_context=None):
        with all_workspaces(reason=OPERATOR):
            return _rendered(super().delete_view(request, object_id, extra_context))


class MemberInline(admin.TabularInline):
    model = Member
    extra = 0
    raw_id_fields = ["user"]
    readonly_fields = ["created_at"]


class WorkspaceInline(admin.TabularInline):
    model = Workspace
    extra = 0
    fields = ["name", "timezone", "created_at"]
    readonly_fields = ["created_at"]
    show_change_link = True


class KeyCachesInvalidatingAdmin(OperatorAdmin):
    """Every process caches API keys with their workspace and organization (keycache): a change
    or a deletion here makes them reload, so a deleted workspace's keys stop at once."""

    def workspace_ids(self, objects) -> list[int]:
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.workspaces_key_caches_invalidate(workspace_ids=self.workspace_ids([obj]))

    def delete_model(self, request, obj):
        services.workspaces_key_caches_invalidate(workspace_ids=self.workspace_ids([obj]))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        services.workspaces_key_caches_invalidate(workspace_ids=self.workspace_ids(queryset))
        super().delete_queryset(request, queryset)


@admin.register(Organization)
class OrganizationAdmin(KeyCachesInvalidatingAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [WorkspaceInline, MemberInline]

    def workspace_ids(self, objects) -> list[int]:
        return list(
            Workspace.objects.filter(organization__in=list(objects)).values_list("id", flat=True)
        )


@admin.register(Workspace)
class WorkspaceAdmin(KeyCachesInvalidatingAdmin):
    list_display = ["name", "id", "organization", "timezone", "created_at"]
    list_select_related = ["organization"]
    list_filter = ["organization"]
    search_fields = ["name", "organization__name"]
    raw_id_fields = ["organization"]

    def workspace_ids(self, objects) -> list[int]:
        return [workspace.id for workspace in objects]


@admin.register(Member)
class MemberAdmin(OperatorAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_select_related = ["user", "organization"]
    list_filter = ["role", "organization"]
    search_fields = ["user__email", "organization__name"]
    raw_id_fields = ["user", "organization"]


@admin.register(ApiKey)
class ApiKeyAdmin(OperatorAdmin):
    list_display = [
        "prefix",
        "name",
        "workspace",
        "kind",
        "role",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_select_related = ["workspace", "created_by"]
    list_filter = ["kind", "role", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "workspace__name"]
    # token_hash is never shown: it is not a secret, but nothing an operator needs either.
    fields = [
        "workspace",
        "name",
        "kind",
        "role",
        "prefix",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request):
        return request.user.has_perm("tenancy.change_apikey")

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        # Operators act with owner rights, recorded as themselves.
        actor = Actor(role=Role.OWNER, user_id=request.user.id)
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key, actor=actor)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)
