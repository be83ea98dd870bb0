from django.conf import settings
from django.utils.cache import add_never_cache_headers

# Strict by default: only our own scripts and styles. The API docs page (Swagger UI from the
# sidecar package) needs one inline script, so it gets its own slightly wider policy.
DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'self'; object-src 'none'"
)
API_DOCS_POLICY = DEFAULT_POLICY.replace(
    "script-src 'self'", "script-src 'self' 'unsafe-inline'"
).replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            is_docs = request.path.startswith("/api/docs/")
            response["Content-Security-Policy"] = API_DOCS_POLICY if is_docs else DEFAULT_POLICY
        if not settings.DEBUG:
            response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class NoStoreMiddleware:
    """Pages and API answers hold customer data: no browser or proxy cache may keep them (a
    shared computer's back button, a caching proxy). Responses that set their own Cache-Control
    (WhiteNoise's static files) keep it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response:
            add_never_cache_headers(response)
        return response
