"""Two workers starting the same campaign at the same moment: exactly one claims it, and one
snapshot is made (real transactions on two connections)."""

import datetime
import threading
from datetime import UTC

import pytest
from django.db import connection

from audiences.models import Membership
from masivo.tenancy.context import workspace_scope
from messaging import campaigns as c
from messaging.models import Message
from tests.factories import AudienceFactory, CustomerFactory
from tests.messaging.helpers import ADMIN
from tests.messaging.test_policy_support import make_template, set_regime

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime.datetime(2026, 6, 15, 15, 0, tzinfo=UTC)


def test_two_workers_never_both_start_a_campaign(workspace):
    with workspace_scope(workspace.id):
        set_regime(workspace, "opt_in")
        template = make_template(workspace)
        audience = AudienceFactory(workspace=workspace)
        for _ in range(20):
            customer = CustomerFactory(
                workspace=workspace, consent={"email_marketing": {"status": "granted"}}
            )
            Membership.objects.create(
                workspace=workspace, audience=audience, customer=customer, source="api"
            )
        campaign = c.campaign_create(
            workspace=workspace,
            values={"name": "x", "channel": "email", "audience_ids": [audience.id],
                    "template_id": template.id},
            actor=ADMIN,
        )  # fmt: skip
        c.campaign_send_now(campaign=campaign, actor=ADMIN, now=NOW)
    barrier = threading.Barrier(2)
    results = []

    def worker():
        try:
            with workspace_scope(workspace.id):
                barrier.wait()
                results.append(c.campaign_start(campaign_id=campaign.id, now=NOW).started)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(results) == [False, True]
    with workspace_scope(workspace.id):
        assert Message.objects.filter(campaign_id=campaign.id).count() == 20
