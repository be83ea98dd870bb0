import pytest

from masivo.feeds import registry
from masivo.feeds.registry import feed_consumer_register
from masivo.tenancy.context import workspace_scope
from tests.factories import AudienceFactory
from tests.feeds.support import FEED


@pytest.fixture(autouse=True)
def consumers(monkeypatch):
    """Each test registers its own consumers of the membership feed, and only those."""
    monkeypatch.setattr(registry, "_consumers", {})

    def register(name, **options):
        return feed_consumer_register(feed=FEED, name=name, **options)

    return register


@pytest.fixture
def audience(workspace):
    with workspace_scope(workspace.id):
        return AudienceFactory(workspace=workspace, name="Mexico")


@pytest.fixture
def second_audience(workspace):
    with workspace_scope(workspace.id):
        return AudienceFactory(workspace=workspace, name="Argentina")
