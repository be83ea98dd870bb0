"""Uploaded lists from CSV: the upload form, live progress, the problems report, and the recent
uploads shown on the audience page. The same service as the API (audiences.lists)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from audiences import selectors
from audiences.lists import list_upload_create, list_upload_problems_csv
from audiences.models import Audience, ListUpload
from audiences.views.audiences import audience_or_404
from audiences.views.forms import ListUploadForm
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import add_service_error
from masivo.ui.pages import dashboard_source, with_source_names

UPLOADS_SHOWN = 20
UPLOADS_SHOWN_ON_AUDIENCE = 5
FINISHED = (ListUpload.Status.SUCCEEDED, ListUpload.Status.FAILED)


def _recent_uploads(audience: Audience, limit: int) -> list[ListUpload]:
    return with_source_names(selectors.list_uploads_list(audience=audience)[:limit])


def _upload_page(request, audience: Audience, form: ListUploadForm, status: int = 200):
    context = {
        "audience": audience,
        "form": form,
        "uploads": _recent_uploads(audience, UPLOADS_SHOWN),
        "active_section": "audiences",
    }
    return render(request, "audiences/list_upload_form.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def list_upload_new(request, audience_id: int):
    """GET: the audience's recent uploads and (for marketers) the form. POST: store and queue."""
    audience = audience_or_404(audience_id)
    if request.method != "POST":
        return _upload_page(request, audience, ListUploadForm())
    form = ListUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _upload_page(request, audience, form, status=400)
    upload = form.cleaned_data["file"]
    try:
        list_upload = list_upload_create(
            audience=audience,
            upload=upload,
            filename=upload.name or "list.csv",
            identifier=form.cleaned_data["identifier"],
            create_missing=form.cleaned_data["create_missing"],
            actor=dashboard_source(request),
        )
    except ServiceError as error:
        add_service_error(form, error)
        return _upload_page(request, audience, form, status=error.status)
    return redirect(
        "dashboard:list_upload_detail",
        workspace_id=request.workspace.id,
        audience_id=audience.id,
        upload_id=list_upload.id,
    )


@require_safe
@workspace_view(permission=Permission.READ)
def list_uploads_recent(request, audience_id: int):
    """The audience page's short list of uploads, loaded by htmx (the page's view is unchanged)."""
    audience = audience_or_404(audience_id)
    context = {
        "audience": audience,
        "uploads": _recent_uploads(audience, UPLOADS_SHOWN_ON_AUDIENCE),
    }
    return render(request, "audiences/_list_upload_recent.html", context)


def _upload_or_404(audience_id: int, upload_id: int) -> tuple[Audience, ListUpload]:
    # Both lookups are scoped to the workspace in context; the upload must also be this
    # audience's, so another audience's (or workspace's) upload is a 404.
    audience = audience_or_404(audience_id)
    uploads = selectors.list_uploads_list(audience=audience)
    return audience, get_object_or_404(uploads, id=upload_id)


def _progress_context(list_upload: ListUpload) -> dict:
    return {
        "list_upload": list_upload,
        "percent": int(list_upload.progress * 100),
        "is_finished": list_upload.status in FINISHED,
        "problem_count": list_upload.rows_unmatched + list_upload.rows_invalid,
    }


@require_safe
@workspace_view(permission=Permission.READ)
def list_upload_detail(request, audience_id: int, upload_id: int):
    audience, list_upload = _upload_or_404(audience_id, upload_id)
    [list_upload] = with_source_names([list_upload])
    context = _progress_context(list_upload) | {"audience": audience, "active_section": "audiences"}
    return render(request, "audiences/list_upload_detail.html", context)


@require_safe
@workspace_view(permission=Permission.READ)
def list_upload_progress(request, audience_id: int, upload_id: int):
    """The progress panel alone, polled by htmx every second until the upload finishes."""
    audience, list_upload = _upload_or_404(audience_id, upload_id)
    context = _progress_context(list_upload) | {"audience": audience}
    return render(request, "audiences/_list_upload_progress.html", context)


@require_safe
@workspace_view(permission=Permission.READ)
def list_upload_problems(request, audience_id: int, upload_id: int):
    _, list_upload = _upload_or_404(audience_id, upload_id)
    response = StreamingHttpResponse(
        list_upload_problems_csv(list_upload=list_upload), content_type="text/csv"
    )
    name = f"list-upload-{list_upload.id}-problems.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
