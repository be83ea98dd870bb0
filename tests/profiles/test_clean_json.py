"""`clean_json` handles leaves in their container's loop for speed: it must give exactly what
the plain recursive definition gives, results and errors alike."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masivo.tenancy.errors import InvalidInput
from profiles.normalize import MAX_JSON_DEPTH, MAX_KEY_LENGTH, clean_json, strip_nul


def reference(value, *, field, depth=0):
    """The definition (as it was written before the fast path)."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidInput(f"nested deeper than {MAX_JSON_DEPTH} levels", field=field)
    if isinstance(value, str):
        return strip_nul(value)
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            key = strip_nul(str(key))
            if len(key) > MAX_KEY_LENGTH:
                raise InvalidInput(f"a key is longer than {MAX_KEY_LENGTH} characters", field=field)
            cleaned[key] = reference(item, field=f"{field}.{key}", depth=depth + 1)
        return cleaned
    if isinstance(value, list):
        return [
            reference(item, field=f"{field}[{i}]", depth=depth + 1) for i, item in enumerate(value)
        ]
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("numbers must be finite", field=field)
    return value


def outcome(function, value):
    try:
        return ("ok", function(value, field="properties"))
    except InvalidInput as error:
        return ("error", error.message, error.field)


text = st.text(alphabet=st.sampled_from(["a", "é", "\x00", "\ud800", "z", " "]), max_size=4)
keys = st.one_of(text, st.text(alphabet="k", min_size=254, max_size=257))
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), text
)
documents = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_the_fast_path_agrees_with_the_definition(document):
    assert outcome(clean_json, document) == outcome(reference, document)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
@pytest.mark.parametrize("leaf", [1, "x", None, 1.5, [], {}])
def test_the_depth_limit_is_the_same_for_every_leaf(depth, leaf):
    document = leaf
    for _ in range(depth):
        document = {"a": document}
    assert outcome(clean_json, document) == outcome(reference, document)
