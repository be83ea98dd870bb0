"""Where real time spends its time, statement by statement, on a database kept by run.py.

Runs the real-time evaluation (`realtime_evaluate_events`, or `realtime_evaluate` at commits
before the change-feeds work, so that old and new code can be compared on the same kept
database) for a fixed, seeded sample of single events and of batches, each inside a
transaction that is rolled back afterwards: every call sees the same memberships, whichever
code runs and however often. Each SQL statement is timed from the client (round trip
included) and grouped by its shape; what remains of the wall time is Python.

    .venv/bin/python bench/audiences/realtime_profile.py --events 200
    PYTHONPATH=/path/to/old/worktree .venv/bin/python /path/to/old/worktree/bench/... (same)

Run run.py with `--keep` first (its real-time phase creates the 20 real-time audiences). The
sample's events are stored once, by the first run with a given `--seed` (`source` 'profile').
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

DATABASE = "masivo_bench_audiences"
ROLE = "masivo_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--events", type=int, default=200, help="single events timed")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the same sample")
    parser.add_argument("--statements", action="store_true", help="print statement shapes")
    args = parser.parse_args()

    import psycopg

    host_url = args.admin_url.rsplit("/", 1)[0]
    admin = psycopg.connect(f"{host_url}/{DATABASE}", autocommit=True)
    os.environ["DATABASE_URL"] = host_url.replace("postgres@", f"{ROLE}:bench@", 1) + (
        f"/{DATABASE}"
    )
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ["DJANGO_SETTINGS_MODULE"] = "masivo.settings"
    import django

    django.setup()
    from django.db import connection, transaction

    from masivo.tenancy.context import workspace_scope
    from masivo.tenancy.models import Workspace

    try:
        from audiences.realtime import realtime_evaluate_events as evaluate
    except ImportError:  # before the change-feeds work
        from audiences.realtime import realtime_evaluate as evaluate

    workspace_id = admin.execute("SELECT min(id) FROM tenancy_workspace").fetchone()[0]
    singles, batches = sample(admin, workspace_id, args)
    with workspace_scope(workspace_id):
        workspace = Workspace.objects.get(id=workspace_id)

    statements: dict[str, list[float]] = defaultdict(list)
    examples: dict[str, str] = {}

    def timed(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = statement_shape(sql)
            statements[shape].append(time.perf_counter() - start)
            examples.setdefault(shape, sql)

    def run(customer_ids, names) -> float:
        with workspace_scope(workspace_id):
            start = time.perf_counter()
            with transaction.atomic():
                evaluate(workspace=workspace, customer_ids=customer_ids, event_names=names)
                elapsed = time.perf_counter() - start
                transaction.set_rollback(True)
        return elapsed

    for customer_id, name in singles[:5]:  # warm the connection and the caches
        run([customer_id], {name})
    walls, batch_walls, slowest = [], [], []
    with connection.execute_wrapper(timed):
        for _ in range(args.rounds):
            for customer_id, name in singles:
                walls.append(run([customer_id], {name}))
                slowest.append((walls[-1], customer_id, name))
        single_statements = {shape: list(times) for shape, times in statements.items()}
        statements.clear()
        for _ in range(args.rounds):
            for customer_ids, names in batches:
                batch_walls.append(run(customer_ids, names))
    report("single events", walls, single_statements, len(walls), examples, args.statements)
    print("\nSlowest single events:")
    for wall, customer_id, name in sorted(slowest)[-8:]:
        events = admin.execute(
            "SELECT count(*) FROM profiles_event WHERE workspace_id = %s AND customer_id = %s",
            [workspace_id, customer_id],
        ).fetchone()[0]
        print(f"- {wall * 1000:.1f} ms: {name} for customer {customer_id} ({events:,} events)")
    report(
        f"batches of {args.batch_size}", batch_walls, statements, len(batch_walls), examples,
        args.statements,
    )  # fmt: skip


def sample(admin, workspace_id: int, args):
    """Seeded customers drawn in proportion to activity, with event names from the mix; their
    events stored once (processed, so the follow-up never claims them)."""
    from bench.audiences import generate

    rng = random.Random(args.seed)
    names = [name for name, _ in generate.EVENT_MIX]
    shares = [share for _, share in generate.EVENT_MIX]
    weights = [b - a for a, b in zip([0.0, *shares], shares, strict=False)]
    count = args.events + args.batches * args.batch_size
    low, high = admin.execute(
        "SELECT min(id), max(id) FROM profiles_event WHERE workspace_id = %s AND source = 'bench'",
        [workspace_id],
    ).fetchone()
    picked: list[tuple[int, str]] = []
    while len(picked) < count:
        candidates = sorted(rng.randint(low, high) for _ in range(count * 2))
        rows = admin.execute(
            "SELECT c.id, c.external_id FROM unnest(%s::bigint[]) WITH ORDINALITY AS x(id, n) "
            "JOIN profiles_event e ON e.id = x.id JOIN profiles_customer c ON c.id = e.customer_id "
            "WHERE e.workspace_id = %s AND NOT c.is_anonymous ORDER BY x.n",
            [candidates, workspace_id],
        ).fetchall()
        picked.extend(rows[: count - len(picked)])
    events = [(cid, external, rng.choices(names, weights)[0]) for cid, external in picked]
    marker = f"profile-{args.seed}-"
    stored = admin.execute(
        "SELECT count(*) FROM profiles_event WHERE workspace_id = %s AND message_id LIKE %s",
        [workspace_id, marker + "%"],
    ).fetchone()[0]
    if stored != len(events):
        admin.execute(
            "DELETE FROM profiles_event WHERE workspace_id = %s AND message_id LIKE %s",
            [workspace_id, marker + "%"],
        )
        with admin.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO profiles_event (workspace_id, type, name, properties, occurred_at, "
                "received_at, message_id, customer_id, user_id, anonymous_id, context, source, "
                "processed_at) VALUES (%s, 'track', %s, jsonb_build_object('value', %s::numeric, "
                "'revenue', %s::numeric, 'category', %s::text), now(), now(), %s, %s, %s, '', "
                "'{}', 'profile', now())",
                [
                    (
                        workspace_id,
                        name,
                        amount,
                        amount,
                        rng.choice(generate.CATEGORIES),
                        f"{marker}{i}",
                        cid,
                        external,
                    )
                    for i, (cid, external, name) in enumerate(events)
                    for amount in [round(rng.lognormvariate(4.1, 0.9), 2)]
                ],
            )
    singles = [(cid, name) for cid, _, name in events[: args.events]]
    rest = events[args.events :]
    batches = []
    for number in range(args.batches):
        chunk = rest[number * args.batch_size : (number + 1) * args.batch_size]
        batches.append((sorted({row[0] for row in chunk}), {row[2] for row in chunk}))
    return singles, batches


def statement_shape(sql: str) -> str:
    """A statement without its literals, short enough to group by."""
    text = re.sub(r"\s+", " ", sql).strip()
    text = re.sub(r"'[^']*'|\b\d+\b", "?", text)
    text = re.sub(r"(\?, )+\?", "…", text)
    if text.startswith("SELECT set_config"):
        return "set_config (RLS scope)"
    if "pg_advisory_xact_lock" in text and text.startswith("SELECT"):
        return "advisory locks"
    if "_rt_members" in text:
        return "real-time evaluation"
    if text.startswith("PREPARE"):
        return "PREPARE"
    if "INSERT INTO audiences_membership " in text:
        return "membership write"
    table = re.search(r'FROM "?(\w+)"?', text)
    return f"{text.split()[0]} {table.group(1) if table else ''}".strip()[:80]


def report(title, walls, statements, calls, examples, show) -> None:
    walls_ms = sorted(w * 1000 for w in walls)
    p95 = walls_ms[min(len(walls_ms) - 1, round(0.95 * (len(walls_ms) - 1)))]
    in_sql = sum(sum(times) for times in statements.values()) * 1000 / calls
    print(f"\n## {title}: {calls} calls, p50 {statistics.median(walls_ms):.2f} ms, p95 "
          f"{p95:.2f} ms, mean {statistics.mean(walls_ms):.2f} ms (of which SQL round trips "
          f"{in_sql:.2f} ms, Python {statistics.mean(walls_ms) - in_sql:.2f} ms)\n")  # fmt: skip
    print("| statement | per call | mean each | p50 each | total ms per call |")
    print("| --- | --- | --- | --- | --- |")
    for shape, times in sorted(statements.items(), key=lambda item: -sum(item[1])):
        mean, median = statistics.mean(times) * 1000, statistics.median(times) * 1000
        print(f"| {shape} | {len(times) / calls:.2f} | {mean:.3f} ms | {median:.3f} ms | "
              f"{sum(times) * 1000 / calls:.3f} |")  # fmt: skip
        if show:
            print(f"|   `{examples[shape][:300]}` |")


if __name__ == "__main__":
    main()
