"""The error responses of the OpenAPI schema, added once for every operation.

Views document what they answer when all goes well; what can go wrong is the same across the
API (authentication, roles, the error handler, the parsers, the throttle), so it is described
here rather than in each `extend_schema`. Every error body has the shape that
`masivo.tenancy.api.errors` renders.
"""

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error of the API (docs/api.md, Errors)",
    "properties": {
        "detail": {"type": "string", "description": "a sentence for people"},
        "code": {"type": "string", "description": "a stable string for programs"},
        "errors": {
            "type": "object",
            "description": "field → messages (a nested field: its own map); on bad input",
            "additionalProperties": {
                "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]
            },
        },
    },
    "required": ["detail", "code"],
}

WRITE_METHODS = {"post", "put", "patch", "delete"}

# status → when; the statuses apply as `_statuses_for` decides.
DESCRIPTIONS = {
    "400": "bad input: malformed JSON (`parse_error`, `too_deep`), or fields that fail "
    "validation (`invalid`, with `errors` per field)",
    "401": "missing, unknown or revoked key",
    "403": "the key's kind or role does not allow it",
    "404": "not found, or another workspace's",
    "409": "conflict with existing state (a duplicate, the last owner, a referenced audience)",
    "415": "the body is not of the media type the operation takes",
    "429": "rate limited; retry after the seconds in Retry-After",
}


def _statuses_for(path: str, method: str, operation: dict) -> list[str]:
    if path.startswith("/v1/"):  # the tracking API: write key, no throttle, any media type
        return ["400", "401"]
    statuses = ["400", "401", "403"]  # every query parameter is checked (NUL), every key
    if "{" in path:
        statuses.append("404")
    if method in WRITE_METHODS:
        statuses.append("409")
    if "requestBody" in operation:
        statuses.append("415")
    statuses.append("429")
    return statuses


def _error_response(status: str) -> dict:
    response = {
        "description": DESCRIPTIONS[status],
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}
        },
    }
    if status == "429":
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
        }
    return response


def _merged(documented: dict, error: dict) -> dict:
    """A status the view documents already (POST /events' all-rejected 400) keeps its body and
    may also be an ordinary error."""
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return {**error, "description": documented.get("description") or error["description"]}
    error_schema = error["content"]["application/json"]["schema"]
    return {
        **documented,
        "content": {"application/json": {"schema": {"anyOf": [schema, error_schema]}}},
    }


# A character Python's str.strip() keeps (what DRF trims before its blank check): not ECMA's
# \s, nor the separators \x1c-\x1f and NEL that Python also strips; U+FEFF it keeps.
VISIBLE_CHARACTER = r"[^\s\x1c-\x1f\x85]|\ufeff"


def _require_visible_text(components: dict) -> None:
    """DRF trims a request string before checking it is not blank: "\x1f" or " " is refused
    as blank, so a required text says it holds a character that is not whitespace."""
    for name, component in components.items():
        if not name.endswith("Request"):
            continue
        for prop in component.get("properties", {}).values():
            field = prop.get("items", prop)  # a list of names: each name
            plain = not {"enum", "format", "pattern", "allOf", "oneOf"} & set(field)
            if field.get("type") == "string" and field.get("minLength", 0) >= 1 and plain:
                field["pattern"] = VISIBLE_CHARACTER


# Collections whose create answers the new object's `id`: that id is the `{id}` of the object's
# own operations (OpenAPI links; schemathesis follows them in its stateful phase).
LINKED_COLLECTIONS = ["/api/v1/customers", "/api/v1/audiences", "/api/v1/api-keys"]


def _link_name(method: str, path: str, collection: str) -> str:
    rest = path.removeprefix(collection + "/{id}").strip("/").replace("-", " ")
    words = [method.lower(), "the new one", *([rest] if rest else [])]
    return "".join(word.title().replace(" ", "") for word in words)


def _add_links(paths: dict) -> None:
    for collection in LINKED_COLLECTIONS:
        create = paths.get(collection, {}).get("post")
        if create is None:
            continue
        links = {
            _link_name(method, path, collection): {
                "operationId": operation["operationId"],
                "parameters": {"id": "$response.body#/id"},
            }
            for path, methods in paths.items()
            if path == collection + "/{id}" or path.startswith(collection + "/{id}/")
            for method, operation in methods.items()
            if method in {"get", "post", "put", "patch", "delete"}
        }
        for status in ("201", "200"):
            if status in create.get("responses", {}):
                create["responses"][status]["links"] = links


def _has_required_fields(schema: dict, components: dict) -> bool:
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if "oneOf" in schema:
        return all(_has_required_fields(member, components) for member in schema["oneOf"])
    return bool(schema.get("required"))


def _require_bodies(paths: dict, components: dict) -> None:
    """drf-spectacular leaves a body of one-of shapes (POST /api-keys) optional; a body with
    required fields is required, as the view refuses a request without one."""
    for methods in paths.values():
        for operation in methods.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body or body.get("required"):
                continue
            json_body = body.get("content", {}).get("application/json", {}).get("schema")
            if json_body and _has_required_fields(json_body, components):
                body["required"] = True


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]); it
    also links each create to its object's operations."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    _require_visible_text(result["components"]["schemas"])
    _add_links(result.get("paths", {}))
    _require_bodies(result.get("paths", {}), result["components"]["schemas"])
    # POST /customers/{id}/identify takes an external_id, an email or both, never neither.
    identify = result["components"]["schemas"].get("IdentifyInRequest")
    if identify is not None:
        identify["anyOf"] = [{"required": ["external_id"]}, {"required": ["email"]}]
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status in _statuses_for(path, method, operation):
                error = _error_response(status)
                responses[status] = (
                    _merged(responses[status], error) if status in responses else error
                )
    return result
