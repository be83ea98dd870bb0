import base64
import binascii

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


def _enter_workspace(request, api_key: ApiKey) -> tuple[KeyPrincipal, ApiKey]:
    set_scope_for_request(Scope(workspace_id=api_key.workspace_id))
    request.workspace = api_key.workspace
    request.actor = Actor(role=api_key.role, api_key_id=api_key.id)
    request.is_write_key = api_key.kind == ApiKey.Kind.WRITE
    return KeyPrincipal(api_key), api_key


class SecretKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer msv_sk_…`; sets the workspace context for the request.

    Write keys are refused, except on views that set `accepts_write_key = True` (device
    registration by mobile apps), which then check what a write key may do there.
    """

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
        view = request.parser_context.get("view") if request.parser_context else None
        if api_key.kind != ApiKey.Kind.SECRET and not getattr(view, "accepts_write_key", False):
            raise exceptions.PermissionDenied(
                "write keys are for ingestion and mobile apps only; use a secret key"
            )
        return _enter_workspace(request, api_key)

    def authenticate_header(self, request):
        return self.keyword


class WriteKeyAuthentication(authentication.BaseAuthentication):
    """The tracking API's credential, as Segment clients send it: HTTP Basic with the write key
    as the username (empty password), or `writeKey` in the JSON body."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        token = None
        if len(header) == 2 and header[0].lower() == b"basic":
            try:
                token = base64.b64decode(header[1], validate=True).decode("utf-8").split(":")[0]
            except (binascii.Error, UnicodeDecodeError) as error:
                raise exceptions.AuthenticationFailed("malformed Basic credentials") from error
        elif len(header) == 2 and header[0].lower() == b"bearer":
            token = header[1].decode("latin-1")
        elif isinstance(request.data, dict) and isinstance(request.data.get("writeKey"), str):
            token = request.data["writeKey"]
        if not token:
            return None
        api_key = api_key_authenticate(token)
        if api_key is None or api_key.kind != ApiKey.Kind.WRITE:
            raise exceptions.AuthenticationFailed("unknown or revoked write key")
        return _enter_workspace(request, api_key)

    def authenticate_header(self, request):
        return 'Basic realm="masivo"'


class SecretKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "masivo.tenancy.api.authentication.SecretKeyAuthentication"
    name = "SecretKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A secret API key (msv_sk_…)"}


class WriteKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "masivo.tenancy.api.authentication.WriteKeyAuthentication"
    name = "WriteKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "The workspace's write key as the username, empty password",
        }
