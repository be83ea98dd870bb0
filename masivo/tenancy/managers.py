"""Wall one: tenant models whose default manager refuses to run without a workspace context."""

from django.db import models

from masivo.tenancy.context import MissingWorkspaceContext, current_scope


class WorkspaceScopedQuerySet(models.QuerySet):
    pass


class WorkspaceScopedManager(models.Manager.from_queryset(WorkspaceScopedQuerySet)):
    """Filters by the workspace in context; raises when there is none.

    Inside `all_workspaces(reason=...)` it returns every workspace's rows (and so does RLS).
    """

    def get_queryset(self):
        scope = current_scope()
        queryset = super().get_queryset()
        if scope.workspace_id is not None:
            return queryset.filter(workspace_id=scope.workspace_id)
        if scope.is_all_workspaces:
            return queryset
        raise MissingWorkspaceContext(
            f"{self.model.__name__} is a tenant model: query it inside workspace_scope() "
            "or, for cross-tenant jobs, all_workspaces(reason=...)"
        )


class TenantModel(models.Model):
    """Base for every table that belongs to a workspace.

    Services pass `workspace` explicitly when creating rows. Subclasses list `workspace` first in
    their composite indexes and unique constraints (the path to sharding by workspace), and their
    migrations add `EnableWorkspaceRLS` for the table.
    """

    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.CASCADE, related_name="+")

    objects = WorkspaceScopedManager()
    all_objects = models.Manager()  # noqa: DJ012 (unfiltered but still bound by RLS)

    class Meta:
        abstract = True
        base_manager_name = "all_objects"
