"""Campaign pages in the dashboard: the list, the builder with its estimate, a campaign's page
with progress and stats, the actions, roles and foreign ids."""

import pytest

from audiences.models import Membership
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging import campaigns
from messaging.models import Campaign, Message, MessageStatusChange
from tests.dashboard.conftest import client_for
from tests.factories import AudienceFactory, CampaignFactory, CustomerFactory, MemberFactory
from tests.messaging.helpers import ADMIN
from tests.messaging.test_policy_support import make_template, set_regime

pytestmark = pytest.mark.django_db

GRANTED = {"email_marketing": {"status": "granted"}}


@pytest.fixture
def setup(workspace):
    with workspace_scope(workspace.id):
        set_regime(workspace, "opt_in")
        template = make_template(workspace, name="Sale")
        audience = AudienceFactory(workspace=workspace, name="VIP")
        for consent in (GRANTED, GRANTED, {}):
            customer = CustomerFactory(workspace=workspace, consent=consent)
            Membership.objects.create(
                workspace=workspace, audience=audience, customer=customer, source="api"
            )
    return template, audience


def base(workspace):
    return f"/w/{workspace.id}/campaigns"


def form(setup, **changes):
    template, audience = setup
    return {"name": "Summer", "channel": "email", "template": template.id,
            "audiences": [audience.id], "weight_a": 50} | changes  # fmt: skip


def test_the_builder_estimates_then_saves_a_draft(member, workspace, setup):
    client = client_for(member)

    page = client.get(f"{base(workspace)}/new/")
    estimate = client.post(f"{base(workspace)}/new/", form(setup, action="estimate"))
    htmx = client.post(
        f"{base(workspace)}/new/", form(setup, action="estimate"), HTTP_HX_REQUEST="true"
    )
    saved = client.post(f"{base(workspace)}/new/", form(setup, action="save"))

    assert page.status_code == 200
    assert "2 of 3 reachable: 1 no consent" in estimate.content.decode()
    assert htmx.content.decode().startswith('<div id="estimate"')
    assert "2 of 3 reachable: 1 no consent" in htmx.content.decode()
    with workspace_scope(workspace.id):
        campaign = Campaign.objects.get()
    assert saved.status_code == 302
    assert saved["Location"] == f"{base(workspace)}/{campaign.id}/"
    assert (campaign.name, campaign.status, campaign.audience_ids) == (
        "Summer", "draft", [setup[1].id],
    )  # fmt: skip
    listing = client.get(f"{base(workspace)}/").content.decode()
    assert "Summer" in listing


def test_the_builder_shows_a_service_refusal_on_its_field(member, workspace, setup):
    with workspace_scope(workspace.id):
        push = make_template(workspace, "push", name="Push")

    response = client_for(member).post(
        f"{base(workspace)}/new/", form(setup, template_b=push.id, action="save")
    )

    assert response.status_code == 400
    assert "The template is for push, not email" in response.content.decode()
    with workspace_scope(workspace.id):
        assert Campaign.objects.count() == 0


def test_a_campaign_page_sends_shows_progress_and_stats(member, workspace, setup):
    client = client_for(member)
    client.post(f"{base(workspace)}/new/", form(setup, action="save"))
    with workspace_scope(workspace.id):
        campaign = Campaign.objects.get()
    url = f"{base(workspace)}/{campaign.id}/"
    assert "2 of 3 reachable: 1 no consent" in client.get(url).content.decode()

    sent = client.post(f"{url}send/")
    with workspace_scope(workspace.id):
        campaigns.campaign_start(campaign_id=campaign.id)
        message = Message.objects.filter(status="queued").first()
        Message.objects.filter(id=message.id).update(status="delivered")
        for status in ("sent", "delivered"):
            MessageStatusChange.objects.create(workspace=workspace, message=message, status=status)

    assert sent.status_code == 302
    progress = client.get(f"{url}progress/").content.decode()
    assert 'data-percent="66"' in progress
    assert 'hx-trigger="every 2s"' in progress
    detail = client.get(url).content.decode()
    assert '<dd class="stat-value" data-stat="delivered">1</dd>' in detail
    assert "<svg" in detail

    assert client.post(f"{url}pause/").status_code == 302
    with workspace_scope(workspace.id):
        assert Campaign.objects.get(id=campaign.id).status == "paused"
    client.post(f"{url}cancel/")
    with workspace_scope(workspace.id):
        assert Message.objects.filter(status="canceled").count() == 1
    final = client.get(f"{url}progress/").content.decode()
    assert "hx-trigger" not in final
    refused = client.post(f"{url}pause/", follow=True).content.decode()
    assert "The campaign is canceled; only a sending campaign can be paused." in refused


def test_a_viewer_sees_but_cannot_act_and_foreign_ids_are_404(workspace, other_workspace, setup):
    viewer = client_for(MemberFactory(organization=workspace.organization, role=Role.VIEWER))
    with workspace_scope(workspace.id):
        campaign = campaigns.campaign_create(
            workspace=workspace,
            values={"name": "Mine", "channel": "email", "audience_ids": [setup[1].id],
                    "template_id": setup[0].id},
            actor=ADMIN,
        )  # fmt: skip
    with workspace_scope(other_workspace.id):
        foreign = CampaignFactory(workspace=other_workspace)

    assert viewer.get(f"{base(workspace)}/{campaign.id}/").status_code == 200
    assert viewer.post(f"{base(workspace)}/{campaign.id}/send/").status_code == 403
    assert viewer.get(f"{base(workspace)}/new/").status_code in (200, 403)
    assert viewer.post(f"{base(workspace)}/new/", form(setup)).status_code == 403
    assert viewer.get(f"{base(workspace)}/{foreign.id}/").status_code == 404
    assert viewer.get(f"{base(workspace)}/{foreign.id}/progress/").status_code == 404
    with workspace_scope(workspace.id):
        assert Campaign.objects.get(id=campaign.id).status == "draft"


def test_a_draft_is_edited_in_the_builder_and_a_sent_one_is_not(member, workspace, setup):
    client = client_for(member)
    client.post(f"{base(workspace)}/new/", form(setup, action="save", throttle_per_minute=10))
    with workspace_scope(workspace.id):
        campaign = Campaign.objects.get()
    url = f"{base(workspace)}/{campaign.id}/edit/"

    page = client.get(url).content.decode()
    saved = client.post(url, form(setup, name="Winter", action="save"))

    assert 'value="Summer"' in page
    assert 'value="10"' in page
    assert saved.status_code == 302
    with workspace_scope(workspace.id):
        campaign.refresh_from_db()
        assert (campaign.name, campaign.throttle_per_minute) == ("Winter", None)
        assert Campaign.objects.count() == 1
    client.post(f"{base(workspace)}/{campaign.id}/send/")
    refused = client.get(url)
    assert refused.status_code == 302
    assert refused["Location"] == f"{base(workspace)}/{campaign.id}/"
