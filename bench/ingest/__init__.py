"""Ingestion benchmark: realistic Segment batches posted over HTTP, against a raw COPY baseline.

`generate` builds the batches, `load` drives a running server, `baseline` times COPY of the same
rows, `run` does everything end to end (see README.md).
"""
