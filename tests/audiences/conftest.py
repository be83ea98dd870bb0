from tests.profiles.conftest import tracking, write_key  # noqa: F401 (shared fixtures)
