"""Error pages: JSON under /api/ and /v1/, HTML for the dashboard."""

from django.shortcuts import render

from masivo.tenancy.api.errors import json_bad_request, json_not_found, json_server_error

API_PREFIXES = ("/api/", "/v1/")


def not_found(request, exception=None):
    if request.path.startswith(API_PREFIXES):
        return json_not_found(request)
    return render(request, "errors/404.html", status=404)


def server_error(request):
    if request.path.startswith(API_PREFIXES):
        return json_server_error(request)
    return render(request, "errors/500.html", status=500)


def bad_request(request, exception=None):
    if request.path.startswith(API_PREFIXES):
        return json_bad_request(request)
    return render(request, "errors/400.html", status=400)


def permission_denied(request, exception=None):
    return render(request, "errors/403.html", status=403)
