"""Membership has one writer: no module but audiences/membership.py writes `Membership` or
`MembershipChange` (DESIGN.md section 9). A new writer must go through it, or change this test
on purpose."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ["audiences", "profiles", "masivo", "messaging", "journeys", "destinations"]
OWNER = ROOT / "audiences" / "membership.py"
WRITES = re.compile(
    r"(INSERT\s+INTO|DELETE\s+FROM|UPDATE)\s+audiences_membership(change)?\b"
    r"|\bMembership(Change)?\.(all_)?objects\b[^\n]*\.(create|bulk_create|update|delete|get_or_create"
    r"|update_or_create)\(",
    re.IGNORECASE,
)


def test_only_the_membership_owner_writes_membership():
    writers = sorted(
        str(path.relative_to(ROOT))
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and path != OWNER and WRITES.search(path.read_text())
    )
    assert writers == []


def test_the_pattern_sees_a_write():
    assert WRITES.search('cursor.execute("DELETE FROM audiences_membership WHERE id = 1")')
    assert WRITES.search("Membership.objects.filter(audience=a).delete()")
    assert WRITES.search(OWNER.read_text())
