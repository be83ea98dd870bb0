"""The tracking API's parser (profiles.api.parsers) within the shared bounds: a body nested too
deep is a 400 before it is parsed; a non-finite number rejects the message that stores it."""

import json

import pytest

from profiles.models import Event
from tests.profiles.helpers import rows

pytestmark = pytest.mark.django_db

TOO_DEEP = {"detail": "JSON nested deeper than 64 levels", "code": "too_deep"}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", ["track", "batch"])
def test_a_tracking_body_nested_too_deep_is_a_400(tracking, workspace, path):
    body = '{"userId": "u1", "event": "E", "properties": {"x": ' + nested(1_000) + "}}"

    response = tracking.post(path, None, raw=body.encode())

    assert response.status_code == 400
    assert json.loads(response.content) == TOO_DEEP
    assert rows(workspace, Event, "id") == []


def test_a_non_finite_number_rejects_its_tracking_message_only(tracking, workspace):
    body = (
        b'{"batch": [{"type": "track", "userId": "u1", "event": "E", "messageId": "m1",'
        b' "properties": {"x": 1e400}},'
        b' {"type": "track", "userId": "u1", "event": "E", "messageId": "m2",'
        b' "integrations": {"x": NaN}}]}'
    )

    response = tracking.post("batch", None, raw=body)

    assert response.status_code == 200
    assert json.loads(response.content)["rejected"] == [
        {"index": 0, "reason": "numbers must be finite", "field": "properties.x", "messageId": "m1"}
    ]
    assert rows(workspace, Event, "message_id") == ["m2"]
