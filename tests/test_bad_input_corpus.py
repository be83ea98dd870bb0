"""The bad-input corpus: whatever a request carries, the answer is never a 5xx.

Every write endpoint of the OpenAPI schema gets one JSON body per payload class, with the payload
in every slot the request schema describes; every query parameter gets one request per class of
bad value; the tracking API gets the same classes in each kind of message. Payloads that nothing
can store (non-finite numbers, depth 10,000, wrong types) must be refused with a 4xx in the error
shape; payloads that the API documents as cleaned (NUL and lone surrogates in body strings are
removed or replaced) may be accepted. Multipart uploads have their own tests
(tests/profiles/test_imports_bad_input.py, tests/audiences/test_lists_bad_input.py).
"""

import base64
import json
from dataclasses import dataclass

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.models import ApiKey
from masivo.tenancy.services import api_key_create
from tests.factories import (
    AudienceFactory,
    AudienceSyncFactory,
    CampaignFactory,
    ChannelConnectionFactory,
    CustomerFactory,
    CustomerImportFactory,
    DestinationFactory,
    JourneyFactory,
    ListUploadFactory,
    TemplateFactory,
    WebhookEndpointFactory,
)

pytestmark = pytest.mark.django_db

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
WRITE_METHODS = ("post", "put", "patch", "delete")
DEEP = "[" * 10_000 + "]" * 10_000
HUGE = json.dumps("x" * 200_000)


@dataclass(frozen=True)
class Payload:
    """JSON text fragments to put in each kind of slot of a request body."""

    text: str
    number: str = "1"
    boolean: str = "true"
    object: str | None = None  # a free-form object (traits, tags, properties): {"x": any}
    any: str | None = None  # a slot of any JSON (rules)
    refused: bool = True  # False: the API may clean it and answer 2xx

    def fragment(self, kind: str) -> str:
        fragments = {
            "text": self.text,
            "number": self.number,
            "boolean": self.boolean,
            "object": self.object or f'{{"x": {self.any or self.number}}}',
            "any": self.any or self.number,
        }
        return fragments[kind]


def rules_with(value: str) -> str:
    """The one slot of any JSON in the API is an audience's rules: a valid document, so that
    `value` reaches the rule parser."""
    condition = f'{{"field": "city", "op": "eq", "value": {value}}}'
    return f'{{"version": 1, "root": {{"profile": {condition}}}}}'


PAYLOADS = {
    "nul": Payload(
        r'"a\u0000b"',
        object=r'{"k\u0000": "v\u0000"}',
        any=rules_with(r'"a\u0000b"'),
        refused=False,
    ),
    "lone_surrogate": Payload(
        r'"a\ud800"',
        object=r'{"k\udc00": "\ud800"}',
        any=rules_with(r'"\ud800"'),
        refused=False,
    ),
    "huge_string": Payload(HUGE, object=f'{{"x": {HUGE}}}', any=rules_with(HUGE), refused=False),
    "plus_1e400": Payload('"x"', number="1e400", boolean="1e400", any="1e400"),
    "minus_1e400": Payload('"x"', number="-1e400", boolean="-1e400", any="-1e400"),
    "nan": Payload('"x"', number="NaN", boolean="NaN", any="NaN"),
    "infinity": Payload('"x"', number="Infinity", boolean="-Infinity", any="Infinity"),
    "depth_10000": Payload(DEEP, number=DEEP, boolean=DEEP, any=DEEP),
    "wrong_types": Payload(
        '{"a": [1]}', number='"seven"', boolean='"maybe"', object='"x"', any='"x"'
    ),
}


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def render(schema: dict, payload: Payload) -> str:
    """A body shaped like `schema`, with `payload` in every slot."""
    schema = _resolve(schema)
    kind = schema.get("type")
    if kind == "object" and schema.get("properties"):
        members = (
            f"{json.dumps(name)}: {render(child, payload)}"
            for name, child in schema["properties"].items()
            if not child.get("readOnly")
        )
        return "{" + ", ".join(members) + "}"
    if kind == "array":
        return f"[{render(schema['items'], payload)}]"
    if kind == "object":
        return payload.fragment("object")
    if kind in ("integer", "number"):
        return payload.fragment("number")
    if kind == "boolean":
        return payload.fragment("boolean")
    if kind == "string" or "enum" in schema:
        return payload.fragment("text")
    return payload.fragment("any")


def operations():
    for path, methods in SCHEMA["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def _json_schema(operation) -> dict | None:
    content = operation.get("requestBody", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


API_BODIES = [
    (method, path, _json_schema(operation))
    for path, method, operation in operations()
    if method in WRITE_METHODS and _json_schema(operation) and not path.startswith("/v1/")
]
QUERY_PARAMETERS = [
    (method, path, parameter["name"], parameter.get("schema", {}).get("type", "string"))
    for path, method, operation in operations()
    for parameter in operation.get("parameters", [])
    if parameter["in"] == "query"
]
TRACKING_PATHS = sorted(path for path, _, _ in operations() if path.startswith("/v1/"))

# The object each {id} of a path names, by path prefix (the first match wins).
PATH_OBJECTS = [
    ("/api/v1/customers/{id}", "customer"),
    ("/api/v1/audiences/{id}/members", "list_audience"),
    ("/api/v1/audiences/{id}/uploads", "list_audience"),
    ("/api/v1/audiences/{id}", "rules_audience"),
    ("/api/v1/api-keys/{id}", "other_key"),
    ("/api/v1/members/{id}", "member"),
    ("/api/v1/customer-imports/{id}", "customer_import"),
    ("/api/v1/list-uploads/{id}", "list_upload"),
    ("/api/v1/messaging/connections/{id}", "channel_connection"),
    ("/api/v1/messaging/campaigns/{id}", "campaign"),
    ("/api/v1/messaging/templates/{id}", "message_template"),
    ("/api/v1/destinations/syncs/{id}", "audience_sync"),
    ("/api/v1/destinations/webhooks/{id}", "webhook_endpoint"),
    ("/api/v1/destinations/{id}", "destination"),
    ("/api/v1/journeys/{id}", "journey"),
]


@pytest.fixture
def journey(in_workspace):
    return JourneyFactory(workspace=in_workspace)


@pytest.fixture
def destination(in_workspace):
    return DestinationFactory(workspace=in_workspace)


@pytest.fixture
def webhook_endpoint(in_workspace):
    return WebhookEndpointFactory(workspace=in_workspace)


@pytest.fixture
def audience_sync(in_workspace):
    return AudienceSyncFactory(workspace=in_workspace)


@pytest.fixture
def customer(in_workspace):
    return CustomerFactory(workspace=in_workspace)


@pytest.fixture
def campaign(in_workspace):
    return CampaignFactory(workspace=in_workspace)


@pytest.fixture
def message_template(in_workspace):
    return TemplateFactory(workspace=in_workspace)


@pytest.fixture
def rules_audience(in_workspace):
    return AudienceFactory(workspace=in_workspace)


@pytest.fixture
def list_audience(in_workspace):
    return AudienceFactory(workspace=in_workspace, kind="list", rules=None, profile_fields=[])


@pytest.fixture
def other_key(in_workspace):
    return api_key_create(
        workspace=in_workspace, kind=ApiKey.Kind.SECRET, name="other", role="viewer"
    ).api_key


@pytest.fixture
def customer_import(in_workspace):
    return CustomerImportFactory(workspace=in_workspace)


@pytest.fixture
def list_upload(in_workspace):
    return ListUploadFactory(workspace=in_workspace)


@pytest.fixture
def channel_connection(in_workspace):
    return ChannelConnectionFactory(workspace=in_workspace)


@pytest.fixture
def in_workspace(workspace):
    with workspace_scope(workspace.id):
        yield workspace


@pytest.fixture
def url(request):
    """`url(path)`: the path with its {id} made an object of the workspace."""

    def make(path: str) -> str:
        if "{id}" not in path:
            return path
        name = next(name for prefix, name in PATH_OBJECTS if path.startswith(prefix))
        return path.replace("{id}", str(request.getfixturevalue(name).id))

    return make


def _has_error_shape(body) -> bool:
    return (
        isinstance(body.get("detail"), str)
        and isinstance(body.get("code"), str)
        and isinstance(body.get("errors", {}), dict)
    )


def _is_all_rejected_ingest(body) -> bool:
    """POST /api/v1/events answers a batch whose every event failed with the ingest result
    (docs/api.md, "Events"): nothing accepted, a reason for each event."""
    return body.get("accepted") == 0 and bool(body.get("rejected"))


def assert_error_shape(response):
    assert 400 <= response.status_code < 500, response.content[:500]
    body = response.json()
    assert _has_error_shape(body) or _is_all_rejected_ingest(body), body


def assert_handled(response, payload: Payload):
    """Refused payloads get a 4xx in the error shape; cleanable ones may also succeed."""
    assert response.status_code < 500, response.content[:500]
    if payload.refused or response.status_code >= 400:
        assert_error_shape(response)


@pytest.mark.parametrize("payload_name", PAYLOADS)
@pytest.mark.parametrize(("method", "path", "schema"), API_BODIES, ids=lambda v: str(v)[:40])
def test_every_api_body_answers_below_500(api, url, method, path, schema, payload_name):
    payload = PAYLOADS[payload_name]
    body = render(schema, payload)
    if payload.text == '"x"' and body == render(schema, Payload('"x"')):
        # A body with only text slots (a reason): the bad number had nowhere to go, so what
        # was sent is valid text.
        payload = Payload('"x"', refused=False)

    response = getattr(api, method)(url(path), body, content_type="application/json")

    assert_handled(response, payload)


@pytest.mark.parametrize(("method", "path", "schema"), API_BODIES, ids=lambda v: str(v)[:40])
def test_a_body_that_is_not_an_object_is_refused(api, url, method, path, schema):
    response = getattr(api, method)(url(path), '[1, "two"]', content_type="application/json")

    assert_error_shape(response)


QUERY_VALUES = {
    "huge": "x" * 100_000,
    "not_a_number": "NaN",
    "negative": "-1",
    "json": '{"a": [1e400]}',
    "percent_encoded_surrogate": "\ufffd",  # what Django makes of %ED%A0%80
}


@pytest.mark.parametrize(
    ("method", "path", "name", "kind"), QUERY_PARAMETERS, ids=lambda v: str(v)[:40]
)
def test_a_nul_in_any_query_parameter_is_a_400_naming_it(api, url, method, path, name, kind):
    response = getattr(api, method)(f"{url(path)}?{name}=a%00b")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid input",
        "code": "invalid",
        "errors": {name: ["must not contain NUL characters"]},
    }


@pytest.mark.parametrize("value_name", QUERY_VALUES)
@pytest.mark.parametrize(
    ("method", "path", "name", "kind"), QUERY_PARAMETERS, ids=lambda v: str(v)[:40]
)
def test_any_query_value_answers_below_500(api, url, method, path, name, kind, value_name):
    response = getattr(api, method)(url(path), {name: QUERY_VALUES[value_name]})

    assert_handled(response, Payload("", refused=False))


# Multipart uploads: their files and form fields have tests of their own (see the docstring).
MULTIPART_BODIES = {
    ("post", "/api/v1/customer-imports"),
    ("post", "/api/v1/audiences/{id}/uploads"),
}


def test_the_corpus_is_built_from_the_served_schema(api):
    served = api.get("/api/v1/schema/", {"format": "json"}).json()

    assert served["paths"] == json.loads(json.dumps(SCHEMA["paths"]))


def test_every_operation_with_a_body_is_in_the_corpus():
    with_body = {
        (method, path) for path, method, operation in operations() if "requestBody" in operation
    }
    in_corpus = {(method, path) for method, path, _ in API_BODIES}
    in_corpus |= {("post", path) for path in TRACKING_PATHS} | MULTIPART_BODIES

    assert with_body == in_corpus


# -- the tracking API (write key, HTTP Basic) -----------------------------------------------------

MESSAGES = {
    "identify": {"userId": "u1", "traits": {}, "context": {}},
    "track": {"userId": "u1", "event": "E", "properties": {}, "context": {}},
    "page": {"userId": "u1", "name": "Home", "properties": {}, "context": {}},
    "screen": {"userId": "u1", "name": "Home", "properties": {}, "context": {}},
    "group": {"userId": "u1", "groupId": "g1", "traits": {}, "context": {}},
    "alias": {"userId": "u1", "previousId": "u0", "context": {}},
}
MESSAGES["batch"] = MESSAGES["import"] = {
    "batch": [{"type": "track", **MESSAGES["track"]}],
    "context": {},
}


def render_message(message: dict, payload: Payload) -> str:
    """`message` with `payload` in every slot: ids and names as text, free-form objects as
    objects; a list holds messages, rendered the same way."""

    def slot(value) -> str:
        if isinstance(value, dict):
            return payload.fragment("object")
        if isinstance(value, list):
            return "[" + ", ".join(render_message(item, payload) for item in value) + "]"
        return payload.fragment("text") if value != "track" else '"track"'

    return "{" + ", ".join(f"{json.dumps(k)}: {slot(v)}" for k, v in message.items()) + "}"


@pytest.fixture
def tracking_client(in_workspace):
    token = api_key_create(workspace=in_workspace, kind="write", name="app").token
    return Client(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{token}:".encode()).decode())


@pytest.mark.parametrize("payload_name", PAYLOADS)
@pytest.mark.parametrize("path", TRACKING_PATHS)
def test_every_tracking_call_answers_below_500(tracking_client, path, payload_name):
    payload = PAYLOADS[payload_name]
    body = render_message(MESSAGES[path.removeprefix("/v1/")], payload)

    response = tracking_client.post(path, body, content_type="application/json")

    assert_handled(response, payload)
