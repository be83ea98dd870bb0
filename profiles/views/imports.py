"""Customer CSV imports: upload, live progress, the error report. The same service as the API."""

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from masivo.ui.forms import as_sentence
from masivo.ui.pages import dashboard_source, with_source_names
from profiles import selectors
from profiles.imports import customer_import_create, customer_import_errors_csv
from profiles.models import CustomerImport
from profiles.views.forms import CustomerImportForm

RECENT_IMPORTS_SHOWN = 20
FINISHED = (CustomerImport.Status.SUCCEEDED, CustomerImport.Status.FAILED)


def _form_field(error: ServiceError) -> str | None:
    """The form field a service error names: "mapping.Plan" is the mapping box."""
    field = (error.field or "").split(".", 1)[0]
    return field if field in CustomerImportForm.base_fields else None


def _imports_page(request, form: CustomerImportForm, status: int = 200):
    imports = selectors.customer_imports_list().defer("mapping")
    context = {
        "form": form,
        "imports": with_source_names(imports[:RECENT_IMPORTS_SHOWN]),
        "active_section": "customers",
    }
    return render(request, "profiles/imports/list.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)
def customer_imports(request):
    """GET: recent imports and (for marketers) the upload form. POST: store and queue the file."""
    if request.method != "POST":
        return _imports_page(request, CustomerImportForm())
    form = CustomerImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _imports_page(request, form, status=400)
    upload = form.cleaned_data["file"]
    try:
        customer_import = customer_import_create(
            workspace=request.workspace,
            upload=upload,
            filename=upload.name or "upload.csv",
            mapping=form.cleaned_data["mapping"],
            match_by=form.cleaned_data["match_by"] or None,
            actor=dashboard_source(request),
        )
    except ServiceError as error:
        form.add_error(_form_field(error), as_sentence(error.message))
        return _imports_page(request, form, status=error.status)
    return redirect(
        "dashboard:customer_import_detail",
        workspace_id=request.workspace.id,
        import_id=customer_import.id,
    )


def _import_or_404(import_id: int) -> CustomerImport:
    return get_object_or_404(selectors.customer_imports_list(), id=import_id)


def _progress_context(customer_import: CustomerImport) -> dict:
    return {
        "customer_import": customer_import,
        "percent": int(customer_import.progress * 100),
        "is_finished": customer_import.status in FINISHED,
    }


@require_safe
@workspace_view(permission=Permission.READ)
def customer_import_detail(request, import_id: int):
    [customer_import] = with_source_names([_import_or_404(import_id)])
    ignored = [column for column, target in customer_import.mapping.items() if target == "ignore"]
    context = _progress_context(customer_import) | {
        "ignored_columns": sorted(ignored),
        "active_section": "customers",
    }
    return render(request, "profiles/imports/detail.html", context)


@require_safe
@workspace_view(permission=Permission.READ)
def customer_import_progress(request, import_id: int):
    """The progress panel alone, polled by htmx every second until the import finishes."""
    context = _progress_context(_import_or_404(import_id))
    return render(request, "profiles/imports/_progress.html", context)


@require_safe
@workspace_view(permission=Permission.READ)
def customer_import_errors(request, import_id: int):
    customer_import = _import_or_404(import_id)
    response = StreamingHttpResponse(
        customer_import_errors_csv(customer_import=customer_import), content_type="text/csv"
    )
    name = f"import-{customer_import.id}-errors.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
