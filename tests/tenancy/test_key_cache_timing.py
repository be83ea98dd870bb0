"""How much the per-process API-key cache saves per request: a measurement, printed, not a
benchmark (the lead measures whole requests in bench/ingest). Run it with `-s` to see it:

    python3 dev.py test tests/tenancy/test_key_cache_timing.py -q -s -m slow
"""

import statistics
import time

import pytest

from masivo.tenancy import keycache
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.keys import hash_token
from masivo.tenancy.models import ApiKey
from masivo.tenancy.roles import Role
from masivo.tenancy.services import _api_key_load, api_key_authenticate, api_key_create

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
ROUNDS = 2000


def median_microseconds(call) -> float:
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


def test_a_cached_lookup_saves_the_database_round_trip(workspace):
    with workspace_scope(workspace.id):
        token = api_key_create(
            workspace=workspace, kind=ApiKey.Kind.SECRET, name="timing", role=Role.VIEWER
        ).token
    api_key_authenticate(token)  # records the use: what follows measures lookups only

    def uncached():
        keycache.cache_clear()
        api_key_authenticate(token)

    before = median_microseconds(lambda: _api_key_load(hash_token(token)))  # no cache at all
    database = median_microseconds(uncached)
    cached = median_microseconds(lambda: api_key_authenticate(token))
    print(
        f"\napi key lookup, median of {ROUNDS}: the database load alone (before the cache) "
        f"{before:.0f} µs; a miss (Redis version check + database load) {database:.0f} µs; "
        f"a hit (Redis version check + cached entry) {cached:.0f} µs: "
        f"{before - cached:.0f} µs saved per request"
    )
    # A measurement, not a timed assertion (performance lives in bench/): what is checked is
    # that the cached path answers the same key as the database.
    assert api_key_authenticate(token).id == _api_key_load(hash_token(token)).id
