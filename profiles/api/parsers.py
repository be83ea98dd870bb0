import zlib

import orjson
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

from masivo.tenancy.api.parsers import MAX_JSON_DEPTH, JSONBodyError, loads_bounded
from profiles.tracking import MAX_BATCH_BYTES

MAX_COMPRESSED_BYTES = MAX_BATCH_BYTES  # gzip never makes JSON bigger


class SegmentJSONParser(BaseParser):
    """JSON, optionally `Content-Encoding: gzip`, at most 500 KB once decompressed.

    Reads at most one byte past each limit, so an oversized or zip-bomb body costs nothing.
    """

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        raw = stream.read(MAX_BATCH_BYTES + 1) if stream else b""
        if request.META.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            if len(raw) > MAX_COMPRESSED_BYTES:
                raise exceptions.ParseError("the body is larger than 500 KB", code="too_large")
            try:
                decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                raw = decompressor.decompress(raw, MAX_BATCH_BYTES + 1)
            except zlib.error as error:
                raise exceptions.ParseError("the body is not valid gzip") from error
        if len(raw) > MAX_BATCH_BYTES:
            raise exceptions.ParseError("the body is larger than 500 KB", code="too_large")
        try:
            # The fast path, for valid UTF-8 JSON of finite numbers (orjson refuses the rest).
            value = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            # Everything else gets the general parser's answer: its errors, and non-finite
            # numbers kept so that a message rejects them in the fields it stores (with a
            # reason naming the field) and ignores them in the fields it does not.
            return loads_bounded(raw or b"{}", allow_non_finite=True)
        # Fewer brackets than the limit cannot nest deeper than it: most bodies skip the walk.
        brackets = raw.count(b"[") + raw.count(b"{")
        if brackets > MAX_JSON_DEPTH and deeper_than(value, MAX_JSON_DEPTH):
            raise JSONBodyError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", code="too_deep")
        return value


def deeper_than(value, limit: int) -> bool:
    """Whether parsed JSON nests arrays and objects more than `limit` levels (iteratively: a
    walk of the containers only, cheaper than scanning the text again)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if type(item) is dict or type(item) is list:
            children = item.values() if type(item) is dict else item
            stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return False
