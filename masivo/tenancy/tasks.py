"""The base for Celery tasks that act for one workspace."""

from celery import Task

from masivo.tenancy.context import MissingWorkspaceContext, workspace_scope


class WorkspaceTask(Task):
    """Runs the task inside `workspace_scope(workspace_id)`; `workspace_id` is a keyword arg.

    Tasks take ids, not objects (STYLE.md), so the workspace id always travels with them.
    """

    abstract = True

    def __call__(self, *args, **kwargs):
        workspace_id = kwargs.get("workspace_id")
        if not isinstance(workspace_id, int) or isinstance(workspace_id, bool):
            raise MissingWorkspaceContext(f"{self.name} needs workspace_id=<int> as a keyword")
        with workspace_scope(workspace_id):
            return super().__call__(*args, **kwargs)
