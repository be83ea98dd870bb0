"""The API's one error shape: {"detail": ..., "code": ..., "errors": {field: [...]}}."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from masivo.tenancy.errors import ServiceError


def _field_errors(detail) -> dict:
    if isinstance(detail, dict):
        return {
            field: [str(item) for item in (value if isinstance(value, list) else [value])]
            if not isinstance(value, dict)
            else _field_errors(value)
            for field, value in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {}


def _first_code(detail) -> str:
    if isinstance(detail, dict):
        detail = next(iter(detail.values()), "invalid")
    if isinstance(detail, list):
        detail = detail[0] if detail else "invalid"
    if isinstance(detail, dict):
        return _first_code(detail)
    return getattr(detail, "code", "invalid") or "invalid"


def api_exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["errors"] = {exc.field: [exc.message]}
        return Response(body, status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        response.data = {
            "detail": "invalid input",
            "code": _first_code(exc.detail),
            "errors": errors,
        }
        if "non_field_errors" in errors and len(errors) == 1:
            response.data["detail"] = errors["non_field_errors"][0]
        return response
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = {"detail": str(detail), "code": code}
    if getattr(exc, "field_errors", None):  # a JSONBodyError that knows the value at fault
        response.data["errors"] = exc.field_errors
    if isinstance(exc, exceptions.Throttled):
        response.data["detail"] = "rate limit exceeded; retry after the time in Retry-After"
    return response


def json_not_found(request, exception=None):
    return JsonResponse(
        {"detail": "not found", "code": "not_found"}, status=status.HTTP_404_NOT_FOUND
    )


def json_server_error(request):
    return JsonResponse(
        {"detail": "internal error; it has been logged", "code": "server_error"},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def json_bad_request(request, exception=None):
    return JsonResponse({"detail": "bad request", "code": "bad_request"}, status=400)
