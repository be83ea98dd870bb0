"""Audiences benchmark: recalculation against hand-written SQL, real-time cost, memory.

`generate` fills a scratch database with set-based SQL, `rules` holds the benchmarked rules and
their hand-written SQL, `run` does everything end to end (see README.md).
"""
