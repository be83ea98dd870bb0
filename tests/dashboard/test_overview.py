"""The overview: the workspace at a glance once it has data, the first steps before."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.models import Recalculation
from masivo.dashboard.views.home import CHART_HEIGHT, duration_short
from masivo.tenancy.context import workspace_scope
from profiles.models import Event
from tests.factories import (
    AudienceFactory,
    CustomerFactory,
    CustomerImportFactory,
    ListUploadFactory,
)

pytestmark = pytest.mark.django_db


def overview(client, workspace):
    return client.get(f"/w/{workspace.id}/")


@pytest.fixture
def busy(workspace):
    """3 customers; 4 events received today (one unprocessed for 10 minutes, one from
    yesterday); audiences of 250, 40 and 0 members; a run, an import and a list upload."""
    now = timezone.now()
    with workspace_scope(workspace.id):
        ana, *_ = [CustomerFactory(workspace=workspace) for _ in range(3)]
        received = [now, now, now - timedelta(minutes=10), now - timedelta(days=1, hours=1)]
        for number, received_at in enumerate(received):
            Event.objects.create(
                workspace=workspace, customer=ana, name="purchase", occurred_at=received_at,
                received_at=received_at, message_id=f"m-{number}", source="api",
                processed_at=None if number == 2 else received_at,
            )  # fmt: skip
        vip = AudienceFactory(workspace=workspace, name="VIP", size=250)
        AudienceFactory(workspace=workspace, name="Mexico", size=40)
        AudienceFactory(workspace=workspace, name="Empty", size=0)
        Recalculation.objects.create(
            workspace=workspace, audience=vip, version=1, reason="schedule", status="succeeded",
            size=250,
        )  # fmt: skip
        CustomerImportFactory(workspace=workspace, filename="crm.csv", status="succeeded")
        ListUploadFactory(workspace=workspace, filename="leads.csv", audience__name="Leads")
    return vip


def test_the_overview_shows_the_workspace_at_a_glance(viewer_client, workspace, busy):
    response = overview(viewer_client, workspace)

    context = response.context
    assert (context["customers_count"], context["events_today"]) == (3, 3)
    assert [(audience.name, audience.size) for audience in context["audiences"]] == [
        ("VIP", 250), ("Mexico", 40), ("Empty", 0), ("Leads", 0),
    ]  # fmt: skip
    assert context["audiences_count"] == 4
    assert [run.audience.name for run in context["recalculations"]] == ["VIP"]
    assert [item.filename for item in context["imports"]] == ["crm.csv"]
    assert [item.filename for item in context["list_uploads"]] == ["leads.csv"]
    assert context["ingestion_lag"] in ("10 min", "11 min")
    assert context["is_lagging"] is True
    assert context["is_new_workspace"] is False
    content = response.content.decode()
    assert "Get started" not in content
    assert "Events received today" in content
    assert "are the workers running?" in content


def test_the_chart_has_a_bar_per_hour_so_far_scaled_to_the_busiest(viewer_client, workspace, busy):
    bars = overview(viewer_client, workspace).context["event_bars"]

    assert len(bars) == timezone.localtime().hour + 1
    assert max(bar.height for bar in bars) == CHART_HEIGHT - 4
    assert sum(1 for bar in bars if bar.height) in (1, 2)  # now, and 10 minutes ago
    assert bars[-1].title.endswith(" events") or bars[-1].title.endswith(" event")


def test_without_unprocessed_events_ingestion_is_up_to_date(viewer_client, workspace, busy):
    with workspace_scope(workspace.id):
        Event.objects.filter(processed_at=None).update(processed_at=timezone.now())

    response = overview(viewer_client, workspace)

    assert (response.context["ingestion_lag"], response.context["is_lagging"]) == (None, False)
    assert "Every event is processed" in response.content.decode()


def test_a_new_workspace_gets_the_first_steps(viewer_client, workspace):
    content = overview(viewer_client, workspace).content.decode()

    assert "Get started" in content
    assert "Events received today" not in content


def test_the_overview_costs_a_fixed_number_of_queries(
    viewer_client, workspace, busy, django_assert_num_queries
):
    with workspace_scope(workspace.id):
        for number in range(5):
            AudienceFactory(workspace=workspace, name=f"More {number}")
    overview(viewer_client, workspace)  # warm the session and settings rows

    with django_assert_num_queries(13):
        overview(viewer_client, workspace)


def test_another_workspaces_data_never_shows(member_client, workspace, other_workspace, busy):
    with workspace_scope(other_workspace.id):
        CustomerFactory(workspace=other_workspace)
        AudienceFactory(workspace=other_workspace, name="Theirs", size=9)

    context = overview(member_client, workspace).context

    assert (context["customers_count"], context["audiences_count"]) == (3, 4)
    assert "Theirs" not in [audience.name for audience in context["audiences"]]


def test_an_outsider_gets_a_404(outsider_client, workspace, busy):
    assert overview(outsider_client, workspace).status_code == 404


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3600, "1 h"), (3900, "1 h 5 min"),
     (86400, "1 d"), (93600, "1 d 2 h")],
)  # fmt: skip
def test_durations_read_short(seconds, text):
    assert duration_short(timedelta(seconds=seconds)) == text
