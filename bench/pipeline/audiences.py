"""The 20 real-time audiences of the end-to-end benchmark: five rule shapes, four of each, over
the events and traits that bench/ingest's generator sends. Created through the REST API with
the workspace's secret key, as a customer would."""

from __future__ import annotations

import json
import time
import urllib.request

WINDOW = ("event in a window", [
    ("Recent buyers", {"event": {"name": "Order Completed",
                                 "within": {"last": 3, "unit": "days"}}}),
    ("Checkout today", {"event": {"name": "Checkout Started",
                                  "within": {"last": 24, "unit": "hours"}}}),
    ("Added to cart lately", {"event": {"name": "Product Added",
                                        "within": {"last": 2, "unit": "days"}}}),
    ("Signed in this week", {"event": {"name": "Signed In",
                                       "within": {"last": 7, "unit": "days"}}}),
])  # fmt: skip
FILTERED = ("event with a property filter", [
    ("Shoe browsers", {"event": {
        "name": "Product Viewed", "within": {"last": 7, "unit": "days"},
        "where": [{"property": "category", "op": "eq", "value": "Shoes"}]}}),
    ("Acme carts", {"event": {"name": "Product Added",
                              "where": [{"property": "brand", "op": "eq", "value": "Acme"}]}}),
    ("Big orders", {"event": {"name": "Order Completed",
                              "where": [{"property": "total", "op": "gte", "value": 100}]}}),
    ("Black Friday clickers", {"event": {"name": "Promotion Clicked", "where": [
        {"property": "name", "op": "eq", "value": "Black Friday"}]}}),
])  # fmt: skip
PROFILE = ("profile field or trait", [
    ("Premium plan", {"profile": {"field": "traits.plan", "op": "eq", "value": "premium"}}),
    ("Mexico", {"profile": {"field": "country", "op": "eq", "value": "MX"}}),
    ("Loyal", {"profile": {"field": "traits.loyalty_points", "op": "gte", "value": 2500}}),
    ("Newsletter", {"profile": {"field": "traits.newsletter", "op": "is_true"}}),
])  # fmt: skip
AGGREGATE = ("aggregate over a window", [
    ("Spent 200 this month", {"event": {
        "name": "Order Completed", "within": {"last": 30, "unit": "days"},
        "aggregate": {"fn": "sum", "property": "revenue", "op": "gte", "value": 200}}}),
    ("Heavy viewers", {"event": {"name": "Product Viewed", "within": {"last": 3, "unit": "days"},
                                 "count": {"op": "gte", "value": 5}}}),
    ("Pricey adders", {"event": {
        "name": "Product Added", "within": {"last": 7, "unit": "days"},
        "aggregate": {"fn": "avg", "property": "price", "op": "gte", "value": 40}}}),
    ("Big carts", {"event": {
        "name": "Cart Viewed", "within": {"last": 7, "unit": "days"},
        "aggregate": {"fn": "max", "property": "value", "op": "gte", "value": 150}}}),
])  # fmt: skip


def _reference(name: str, inside: bool = True) -> dict:
    return {"audience": {"id": f"@{name}", "in": inside}}


REFERENCE = ("audience reference or negation", [
    ("Cart abandoners", {"all": [_reference("Added to cart lately"), {"not": {"event": {
        "name": "Order Completed", "within": {"last": 3, "unit": "days"}}}}]}),
    ("Premium outside Mexico", {"all": [_reference("Premium plan"), _reference("Mexico", False)]}),
    ("Viewers who never buy", {"all": [_reference("Heavy viewers"), {"not": {"event": {
        "name": "Order Completed", "within": {"last": 30, "unit": "days"}}}}]}),
    ("Subscribed checkouts", {"all": [_reference("Newsletter"), _reference("Checkout today")]}),
])  # fmt: skip
SHAPES = (WINDOW, FILTERED, PROFILE, AGGREGATE, REFERENCE)


def _resolve_references(node, ids: dict[str, int]):
    if isinstance(node, dict):
        if "audience" in node and isinstance(node["audience"]["id"], str):
            return {"audience": {**node["audience"], "id": ids[node["audience"]["id"][1:]]}}
        return {key: _resolve_references(value, ids) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve_references(item, ids) for item in node]
    return node


def create_audiences(
    *, base_url: str, secret_key: str, shapes=SHAPES, created: dict | None = None
) -> dict[str, tuple[str, int]]:
    """POST /api/v1/audiences for each rule of `shapes` (real time, daily schedule); references
    name audiences in `created` or earlier in `shapes`. Returns name → (shape, id)."""
    created = dict(created or {})
    ids = {name: audience_id for name, (_shape, audience_id) in created.items()}
    for shape, audiences in shapes:
        for name, root in audiences:
            body = {
                "name": name,
                "schedule": "daily",
                "is_realtime": True,
                "rules": {"version": 1, "root": _resolve_references(root, ids)},
            }
            request = urllib.request.Request(  # noqa: S310 (our own local server)
                f"{base_url}/api/v1/audiences",
                data=json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {secret_key}",
                         "Content-Type": "application/json"},
                method="POST",
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer = json.loads(response.read())
            ids[name] = answer["id"]
            created[name] = (shape, answer["id"])
    return created


def wait_for_recalculations(admin, timeout: float = 300) -> float:
    """Until every queued first calculation has finished (the worker runs them)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pending = admin.execute(
            "SELECT count(*) FROM audiences_recalculation WHERE status IN ('queued', 'running')"
        ).fetchone()[0]
        if not pending:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError("the audiences' first calculations did not finish")
