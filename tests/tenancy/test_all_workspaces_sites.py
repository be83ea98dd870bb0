"""The cross-tenant escape hatch stays visible: each use is logged with its reason, and its call
sites are listed here, so adding one is a change a reviewer sees (update the list on purpose)."""

import ast
import logging
import re
from pathlib import Path

import pytest

from masivo.tenancy.context import all_workspaces, current_scope

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {"tests", "node_modules", "test-artifacts", "__pycache__"}

# (file, the reason argument as written), one row per call.
CALL_SITES = [
    ("audiences/scheduling.py", '"beat: find audiences due for recalculation"'),
    ("destinations/exports.py", "DAILY_REASON"),
    ("destinations/scheduling.py", '"beat: find audience syncs that are due"'),
    ("destinations/syncing.py", '"sync_destinations: find runs to do"'),
    ("destinations/tasks.py", '"beat: list destinations that forward"'),
    ("destinations/webhooks.py", "CLAIM_REASON"),
    ("journeys/tasks.py", '"beat: find the workspaces that have journeys"'),
    ("masivo/feeds/tasks.py", '"beat: feed retention runs for every workspace"'),
    ("masivo/jobs.py", "reason"),  # jobs_to_wake(model, reason=...): each sweep names its own
    ("masivo/pipeline.py", '"beat sweep: find every workspace with overdue follow-ups"'),
    ("masivo/pipeline.py", '"beat: list workspaces for the daily metrics refresh"'),
    ("messaging/topic_tasks.py", '"beat: find the workspaces that have push topics"'),
    ("messaging/campaigns.py", "TICK_REASON"),
    ("messaging/sending/recovery.py", "RECOVERY_REASON"),
    ("messaging/sending/store.py", "CLAIM_REASON"),  # the claim
    ("messaging/sending/store.py", "CLAIM_REASON"),  # a hand-over marker
    ("messaging/sending/store.py", "CLAIM_REASON"),  # a hand-over's outcomes
    ("masivo/secrets.py", '"secrets_rotate: re-encrypt every workspace\'s secrets"'),
    ("masivo/tenancy/admin.py", "OPERATOR"),
    ("masivo/tenancy/admin.py", "OPERATOR"),
    ("masivo/tenancy/admin.py", "OPERATOR"),
    ("masivo/tenancy/admin.py", "OPERATOR"),
    ("masivo/tenancy/services.py", '"api key lookup: the token names its workspace"'),
    ("masivo/tenancy/services.py", '"api key caches: a workspace changed or is deleted"'),
]
# Other ways to switch row-level security's escape on: the scope itself and the raw setting.
# Data migrations run as the schema owner, outside any request.
OTHER_SWITCHES = [
    ("audiences/migrations/0004_change_feed.py", "set_config('masivo.all_workspaces', 'on'"),
    ("audiences/migrations/0006_rule_dependencies.py", "set_config('masivo.all_workspaces', 'on'"),
    ("masivo/tenancy/context.py", "Scope(all_workspaces_reason="),
]
SWITCH = re.compile(r"set_config\('masivo\.all_workspaces', 'on'|Scope\(all_workspaces_reason=")


def source_files():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if any(part.startswith(".") or part in SKIPPED_DIRS for part in relative.parts[:-1]):
            continue
        yield relative.as_posix(), path.read_text()


def called_name(node: ast.Call) -> str | None:
    function = node.func
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return None


def test_every_all_workspaces_call_site_is_listed():
    found = []
    for name, text in source_files():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and called_name(node) == "all_workspaces":
                reason = next((k.value for k in node.keywords if k.arg == "reason"), None)
                found.append((name, ast.get_source_segment(text, reason) if reason else None))
    assert sorted(found) == sorted(CALL_SITES)


def test_every_other_switch_of_the_escape_is_listed():
    found = [
        (name, match.group(0)) for name, text in source_files() for match in SWITCH.finditer(text)
    ]
    assert sorted(found) == sorted(OTHER_SWITCHES)


def test_each_use_is_logged_at_info_with_its_reason(caplog):
    with caplog.at_level(logging.INFO, logger="masivo.tenancy.context"):
        with all_workspaces(reason="test: a sweep over every workspace"):
            assert current_scope().all_workspaces_reason == "test: a sweep over every workspace"

    assert [(r.levelname, r.getMessage(), r.all_workspaces_reason) for r in caplog.records] == [
        (
            "INFO",
            "entering all-workspaces scope: test: a sweep over every workspace",
            "test: a sweep over every workspace",
        )
    ]


def test_a_use_without_a_reason_is_refused():
    with pytest.raises(ValueError, match="needs a reason"):
        with all_workspaces(reason=""):
            pass
