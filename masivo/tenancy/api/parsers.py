"""JSON bodies parsed within bounds, so that no body can make the parser or the database fail.

- Depth: at most `MAX_JSON_DEPTH` nested arrays and objects, checked on the raw text before
  `json.loads` runs: the decoder recurses, and a body nested a thousand levels deep (20 KB)
  would raise `RecursionError` inside it.
- Numbers: finite. `NaN`, `Infinity` and literals out of a double's range (`1e400`) cannot be
  stored in jsonb; the error names the field that holds one.
"""

from __future__ import annotations

import codecs
import itertools
import json
import math
import operator
import re
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 64

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")  # minus one: +1 opens, -1 closes


class JSONBodyError(exceptions.ParseError):
    """A body that is JSON, or nearly, but outside what the API accepts. With `field`, the
    error handler adds `errors: {field: [reason]}` to the answer."""

    def __init__(self, reason: str, *, code: str = "parse_error", field: str | None = None):
        super().__init__(f"{field}: {reason}" if field else reason, code=code)
        self.field_errors = {field: [reason]} if field else {}


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text`; brackets inside strings do not count.

    Runs at C speed (regular expressions, translate, accumulate), never recursing."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).encode()
    steps = map(operator.sub, brackets.translate(_STEP), itertools.repeat(1))
    return max(itertools.accumulate(steps), default=0)


def _non_finite_path(value: Any) -> str:
    """The path (`tags.x`, `events[2].properties.v`) of the first non-finite number in `value`."""
    stack = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path
        if isinstance(item, dict):
            children = [(f"{path}.{key}" if path else key, child) for key, child in item.items()]
        elif isinstance(item, list):
            children = [(f"{path}[{index}]", child) for index, child in enumerate(item)]
        else:
            continue
        stack.extend(reversed(children))
    return ""


def loads_bounded(
    raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, allow_non_finite: bool = False
) -> Any:
    """`json.loads` within the bounds above; raises `JSONBodyError` (a 400) otherwise.

    `allow_non_finite` keeps NaN and infinities as Python floats, for callers that reject them
    per item with a reason of their own (the tracking API rejects one message, not the batch).
    """
    try:
        text = (
            raw.decode(json.detect_encoding(raw), "surrogatepass")
            if isinstance(raw, bytes)
            else raw
        )
    except UnicodeDecodeError as error:
        raise JSONBodyError(f"JSON parse error - {error}") from error
    # Fewer brackets than the limit cannot nest deeper than it: most bodies skip the scan.
    if text.count("[") + text.count("{") > max_depth and json_depth(text) > max_depth:
        raise JSONBodyError(f"JSON nested deeper than {max_depth} levels", code="too_deep")
    non_finite = []

    def number(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            non_finite.append(literal)
        return value

    def constant(name: str) -> float:
        non_finite.append(name)
        return float(name)

    try:
        value = json.loads(text, parse_float=number, parse_constant=constant)
    except ValueError as error:
        raise JSONBodyError(f"JSON parse error - {error}") from error
    if non_finite and not allow_non_finite:
        reason = f"numbers must be finite (got {non_finite[0]})"
        raise JSONBodyError(reason, field=_non_finite_path(value) or None)
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the bounds above (the default parser of the API). Every body of
    the API is an object: an array or a bare value is refused here rather than in each view
    (some read `request.data.get(...)` and would take a list for an empty object)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read() if stream else ""
        except UnicodeDecodeError as error:
            raise JSONBodyError(f"JSON parse error - {error}") from error
        body = loads_bounded(text)
        if not isinstance(body, dict):
            raise JSONBodyError("must be a JSON object", code="invalid")  # as the services say
        return body
