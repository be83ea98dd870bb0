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


class CodedValidationError(exceptions.ValidationError):
    """A 400 with field errors whose top-level `code` is not the generic `invalid`, for a case a
    program should tell apart (a feed position that has expired: `unknown_change`)."""

    def __init__(self, detail, *, code: str):
        super().__init__(detail, code=code)
        self.top_level_code = code


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
            # A field's own code (`null`, `invalid_choice`) stays internal: programs branch on
            # one stable code per kind of error, as docs/api.md shows.
            "code": getattr(exc, "top_level_code", "invalid"),
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
