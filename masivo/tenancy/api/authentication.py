from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from masivo.tenancy.actors import Actor
from masivo.tenancy.context import Scope, set_scope_for_request
from masivo.tenancy.models import ApiKey
from masivo.tenancy.services import api_key_authenticate


class KeyPrincipal:
    """The `request.user` of an API request: the key, not a person."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.pk = None

    def __str__(self):
        return f"api key {self.api_key.prefix}"


class SecretKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer msv_sk_…`; sets the workspace context for the request."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header is 'Bearer <key>'")
        api_key = api_key_authenticate(header[1])
        if api_key is None:
            raise exceptions.AuthenticationFailed("unknown or revoked API key")
        if api_key.kind != ApiKey.Kind.SECRET:
            raise exceptions.PermissionDenied(
                "write keys are for ingestion and mobile apps only; use a secret key"
            )
        set_scope_for_request(Scope(workspace_id=api_key.workspace_id))
        request.workspace = api_key.workspace
        request.actor = Actor(role=api_key.role, api_key_id=api_key.id)
        return KeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return self.keyword


class SecretKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "masivo.tenancy.api.authentication.SecretKeyAuthentication"
    name = "SecretKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A secret API key (msv_sk_…)"}
