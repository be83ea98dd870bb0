"""Fixtures of the destinations tests."""

from tests.destinations.support import platform  # noqa: F401 (the engine tests' platform fake)
