"""tests/fakes' Meta Graph fake in a process of its own, so that the sync's CPU and memory are
the engine's: the fake keeps every row of every audience (a 1,000,000-row audience is a few
hundred MB of tuples, twice during a replace), which is the fake's, not Masivo's. It keeps
only its last 100 recorded requests (the tests keep all; 100 batches of 10,000 would keep
~300 MB).

Prints one JSON line (its URL, the token and ad account it knows), then answers commands on
stdin, one a line: `stats <audience id>` prints the audience's row count and the batches it
applied twice (must be 0); end of input stops it.

    .venv/bin/python -m bench.destinations.fake
"""

from __future__ import annotations

import json
import sys
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes.meta import MetaFake

TOKEN = "EAAB-bench-token"  # noqa: S105 (the fake's)
SECRET = "bench-app-secret"  # noqa: S105
ACCOUNT = "1234567890"


def main() -> None:
    fake = MetaFake().start()
    fake.requests = deque(maxlen=100)
    fake.add_token(TOKEN, app_secret=SECRET)
    fake.add_account(ACCOUNT, "Bench Ads")
    print(json.dumps({"url": fake.url, "token": TOKEN, "app_secret": SECRET,
                      "account": ACCOUNT}), flush=True)  # fmt: skip
    for line in sys.stdin:
        command, _, audience = line.strip().partition(" ")
        if command == "stats":
            with fake._lock:
                held = fake.audiences.get(audience)
                rows = len(held.rows) if held else None
            print(json.dumps({"rows": rows, "duplicates": fake.duplicates}), flush=True)
    fake.stop()


if __name__ == "__main__":
    main()
