"""The markdown tables of the end-to-end benchmark."""

from __future__ import annotations

import math

GOAL_RATE = 5_000
GOAL_LAG_P95 = 2.0
OURS = ("gunicorn", "celery", "postgres", "postgres-bg", "poller", "driver")


def _cores(cpu: dict, machine_busy: float, window: float) -> str:
    ours = sum(cpu.values())
    parts = [cpu.get("gunicorn", 0), cpu.get("celery", 0),
             cpu.get("postgres", 0) + cpu.get("postgres-bg", 0),
             cpu.get("driver", 0) + cpu.get("poller", 0), max(machine_busy - ours, 0)]  # fmt: skip
    return " / ".join(f"{part / window:.2f}" for part in parts)


def _seconds(value: float) -> str:
    return "∞" if math.isinf(value) else "n/a" if math.isnan(value) else f"{value:.2f} s"


def print_report(context, steps, audiences, backlog, drains, spy, statements) -> None:
    from bench.pipeline.lag import quantile

    args = context["args"]
    print(f"\n## End to end: ingestion + follow-up, {context['when']:%Y-%m-%d %H:%M} UTC\n")
    print(f"- commit {context['commit']}; machine: {context['machine']}; whole run "
          f"{context['minutes']:.1f} min")  # fmt: skip
    print(f"- gunicorn {args.web_workers} workers, Celery worker concurrency "
          f"{args.worker_concurrency}{'' if args.no_beat else ', beat'}; one workspace, "
          f"{context['customers']:,} known customers, {args.history:,} past events; "
          f"{len(audiences)} real-time audiences")  # fmt: skip
    print(f"- open loop, {args.batch_size}-event batches over {args.connections} connections; "
          f"each rate {args.warmup:g} s warm-up + {args.step_seconds:g} s measured, then up to "
          f"{args.settle:g} s to catch up; lag poll every {args.poll_interval * 1000:.0f} ms "
          f"(median poll {context['poll_ms']:.1f} ms)\n")  # fmt: skip
    if steps:
        print("| offered ev/s | stored ev/s | HTTP p50 / p99 (from due) | errors | lag p50 | "
              "lag p95 (1st / 2nd half) | lag max | backlog growth | backlog at end | caught "
              "up after | bounded | CPU cores: gunicorn / celery / postgres / driver+poller / "
              "other |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for step in steps:
            errors = ", ".join(f"{n}x {status or 'conn'}" for status, n in step.errors.items())
            first, second = step.lag_p95_halves
            lag_max = max(step.lags) if step.lags else math.nan
            unseen = (f" (≥: {step.unseen} of {len(step.lags)} batches not yet followed up at the "
                      "last poll)") if step.unseen else ""  # fmt: skip
            caught = "no" if step.caught_up_after is None else f"{step.caught_up_after:.1f} s"
            print(
                f"| {step.rate:,} | {step.achieved:,.0f} | {step.http_p50:.0f} / "
                f"{step.http_p99:.0f} ms | {errors or '0'} | "
                f"{_seconds(quantile(step.lags, 0.5))} | {_seconds(step.lag_p95)} "
                f"({_seconds(first)} / {_seconds(second)}){unseen} | {_seconds(lag_max)} | "
                f"{step.growth:+,.0f} ev/s | {step.backlog_end:,} | {caught} | "
                f"{'yes' if step.bounded else '**no**'} | "
                f"{_cores(step.cpu, step.machine_busy, step.window)} |"
            )
        worker_errors = {k: v for s in steps for k, v in s.worker_errors.items()}
        if worker_errors:
            print(f"\nworker log: {worker_errors}")
    print("\nAudiences (first calculation at creation, then real time):\n")
    shapes: dict[str, list[str]] = {}
    for name, (shape, _id) in audiences.items():
        shapes.setdefault(shape, []).append(name)
    for shape, names in shapes.items():
        print(f"- {shape}: {', '.join(names)}")
    if backlog:
        ids = f"ids {backlog.first_id:,}..{backlog.last_id:,}"
        print(f"\nDrain of a stored backlog of {backlog.events:,} unresolved events ({ids}), "
              "the same backlog for each shape:\n")  # fmt: skip
        print("| worker | seconds | events/s | stalls (no progress between counts) | CPU cores: "
              "gunicorn / celery / postgres / driver+poller / other | worker log |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- |")
        for result in drains:
            done = (f"all in {result.seconds:.1f} s" if result.seconds else
                    f"{result.drained:,} in {result.elapsed:.0f} s (timeout)")  # fmt: skip
            stalls = ", ".join(f"{length:.0f} s at {at:.0f} s" for at, length in result.stalls)
            print(
                f"| {result.label} | {done} | {result.events_per_second:,.0f} | "
                f"{stalls or 'none'} | {_cores(result.cpu, result.machine_busy, result.elapsed)}"
                f" | {result.errors or '-'} |"
            )
        for result in drains:
            step = max(len(result.timeline) // 12, 1)
            points = ", ".join(f"{t:.0f} s: {count:,}" for t, count in result.timeline[::step])
            print(f"\n- {result.label}, events processed over time: {points}")
        print("\n| baseline (superuser) | events | seconds | events/s |")
        print("| --- | --- | --- | --- |")
        print(
            f"| COPY of generated events as the tracking API stores them (+ message ids) | "
            f"{backlog.copied:,} | {backlog.copy_seconds:.1f} | {backlog.copy_rate:,.0f} |"
        )
        print(
            f"| the rest of the backlog, INSERT … SELECT of those again under new ids | "
            f"{backlog.events - backlog.copied:,} | {backlog.repeat_seconds:.1f} | "
            f"{(backlog.events - backlog.copied) / max(backlog.repeat_seconds, 1e-9):,.0f} |"
        )
        for result in drains:
            print(
                f"\n{result.label}: the drain runs at "
                f"{result.events_per_second / backlog.copy_rate:.3f} of the COPY rate"
            )
    if statements:
        _print_statements(statements, backlog)
    if spy:
        samples, stages, own = spy
        print(f"\npy-spy of the Celery worker during the first drain ({samples:,} on-CPU "
              "samples at 97 Hz; shares of the worker's CPU, inclusive):\n")  # fmt: skip
        print("| where the worker's CPU goes | share |")
        print("| --- | --- |")
        for label, share in stages:
            print(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {share:.0%} |")
        print("\n| function (own time) | share |")
        print("| --- | --- |")
        for function, share in own:
            print(f"| `{function}` | {share:.1%} |")
    _print_goals(steps, drains)


def _print_statements(statements: dict, backlog) -> None:
    events = statements["events"] or 1
    wall = statements["wall"]
    print(
        f"\nIn-process follow-up (`process_events_now`, one process, no Celery) of "
        f"{statements['events']:,} events: {wall:.1f} s = {events / wall:,.0f} ev/s; CPU "
        f"{statements['python_cpu']:.1f} s in Python, {statements['postgres_cpu']:.1f} s in its "
        "Postgres backend\n"
    )
    print("| statement | calls | wall s | Postgres CPU s | Postgres CPU µs per event |")
    print("| --- | --- | --- | --- | --- |")
    for row in sorted(statements["statements"], key=lambda r: -r["postgres"]):
        kind = row["kind"].replace("|", "\\|")
        print(f"| `{kind}` | {row['count']:,} | {row['wall']:.2f} | {row['postgres']:.2f} | "
              f"{row['postgres'] / events * 1e6:.0f} |")  # fmt: skip
    floor = statements["floor"]
    total = sum(seconds for _, _, seconds, _ in floor)
    print(f"\nThe membership work as set-based SQL: each real-time audience's compiled rule over "
          f"all {statements['customers']:,} customers of the workspace (what a recalculation "
          f"selects), {total:.2f} s for the 20:\n")  # fmt: skip
    print("| audience | members | seconds | Postgres CPU s |")
    print("| --- | --- | --- | --- |")
    for name, members, seconds, cpu in floor:
        shown = "cancelled" if members is None else f"{members:,}"
        print(f"| {name} | {shown} | {seconds:.3f} | {cpu:.3f} |")


def _print_goals(steps, drains) -> None:
    sustained = [step for step in steps if step.sustained]
    best = max((step.rate for step in sustained), default=0)
    print("\n| goal | target | measured | met |")
    print("| --- | --- | --- | --- |")
    at_goal = [step for step in steps if step.rate >= GOAL_RATE]
    p95 = at_goal[0].lag_p95 if at_goal else math.nan
    print(f"| sustained end to end (stored, lag bounded, p95 ≤ {GOAL_LAG_P95:g} s, no errors) | "
          f"≥ {GOAL_RATE:,} ev/s | {best:,} ev/s (highest offered rate that held) | "
          f"{'yes' if best >= GOAL_RATE else '**no**'} |")  # fmt: skip
    print(f"| lag p95 at {GOAL_RATE:,} ev/s | ≤ {GOAL_LAG_P95:g} s | {_seconds(p95)} | "
          f"{'yes' if p95 <= GOAL_LAG_P95 else '**no**'} |")  # fmt: skip
    for result in drains:
        print(f"| drain rate, {result.label} | (≥ {GOAL_RATE:,} ev/s to keep up) | "
              f"{result.events_per_second:,.0f} ev/s | "
              f"{'yes' if result.events_per_second >= GOAL_RATE else '**no**'} |")  # fmt: skip
