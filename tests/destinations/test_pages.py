"""Destination and sync pages in the dashboard: the list, the catalogue, the connect form built
from the kind's serializers (a refusal shown on its field), a destination's page with its test,
status and forwarding lag, creating a sync, a sync's page with its run, progress partial,
history and failed records, the actions, the audience's syncs panel, roles and foreign ids."""

from datetime import timedelta

import pytest
from django.utils import timezone

from destinations import services
from destinations.models import AudienceSync, Destination, ForwardBatch, SyncRecord, SyncRun
from masivo.tenancy.actors import Actor
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.dashboard.conftest import client_for
from tests.factories import AudienceFactory, MemberFactory
from tests.fakes.meta import meta_fake, meta_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

TOKEN = "EAAB-meta-token-1234"
ACCOUNT = "1234567890"
ADMIN = Actor(role=Role.ADMIN, user_id=1)


@pytest.fixture
def meta(meta_fake):  # noqa: F811
    meta_fake.add_token(TOKEN)
    meta_fake.add_account(ACCOUNT, "Acme Ads")
    return meta_fake


@pytest.fixture
def admin(workspace):
    return MemberFactory(organization=workspace.organization, role=Role.ADMIN)


def base(workspace) -> str:
    return f"/w/{workspace.id}/destinations"


def make_destination(workspace, **changes) -> Destination:
    with workspace_scope(workspace.id):
        return services.destination_create(
            workspace=workspace, kind="meta", name="Meta ads", actor=ADMIN,
            config={"ad_account_id": ACCOUNT}, credentials={"access_token": TOKEN},
        )  # fmt: skip


@pytest.fixture
def destination(workspace, meta):
    return make_destination(workspace)


@pytest.fixture
def audience(workspace):
    with workspace_scope(workspace.id):
        return AudienceFactory(workspace=workspace, name="VIP")


@pytest.fixture
def sync(workspace, destination, audience):
    """A sync whose first run succeeded with skips, a second run that is dead, and a failed
    record."""
    with workspace_scope(workspace.id):
        sync = services.sync_create(destination=destination, audience=audience, actor=ADMIN,
                                    remote_audience_name="Masivo VIP")  # fmt: skip
        now = timezone.now()
        first = SyncRun.objects.get()
        SyncRun.objects.filter(id=first.id).update(
            status="succeeded", phase="done", to_add=10, added=8, failed=2,
            skipped={"no_consent": 3},
            started_at=now - timedelta(minutes=5) - timedelta(milliseconds=1200),
            finished_at=now - timedelta(minutes=5),
        )  # fmt: skip
        SyncRun.objects.create(workspace=workspace, sync=sync, mode="incremental",
                               status="dead", error="Meta kept answering 500")  # fmt: skip
        SyncRecord.objects.create(workspace=workspace, sync=sync, customer_id=77,
                                  failed_run_id=first.id, attempts=2,
                                  error="invalid email hash")  # fmt: skip
    return sync


def test_an_empty_list_says_what_will_appear(viewer, workspace):
    content = client_for(viewer).get(f"{base(workspace)}/").content.decode()

    assert "<h2>No destinations yet</h2>" in content
    assert "Admins and owners connect them." in content
    assert "/destinations/new/" not in content


def test_the_list_and_the_catalogue(admin, workspace, destination):
    client = client_for(admin)

    listing = client.get(f"{base(workspace)}/").content.decode()
    catalogue = client.get(f"{base(workspace)}/new/").content.decode()

    assert f'href="/w/{workspace.id}/destinations/{destination.id}/">Meta ads</a>' in listing
    assert f'class="nav-link is-active" href="/w/{workspace.id}/destinations/"' in listing
    assert '<h2 id="kind-meta-title">Meta Custom Audiences</h2>' in catalogue
    assert "Keeps a customer-list custom audience in a Meta ad account" in catalogue
    assert '<span class="badge badge-info">Full replace</span>' in catalogue
    assert f'href="/w/{workspace.id}/destinations/new/meta/">Connect</a>' in catalogue


def test_the_connect_form_is_built_from_the_kind_and_connects(admin, workspace, meta):
    client = client_for(admin)

    form = client.get(f"{base(workspace)}/new/meta/").content.decode()
    connected = client.post(f"{base(workspace)}/new/meta/", {
        "name": "Meta ads", "config_ad_account_id": f"act_{ACCOUNT}",
        "credentials_access_token": TOKEN,
    })  # fmt: skip

    assert 'name="config_ad_account_id"' in form
    assert "The ad account id, with or without &quot;act_&quot;" in form
    assert 'type="password" name="credentials_access_token"' in form
    with workspace_scope(workspace.id):
        destination = Destination.objects.get()
    assert connected.status_code == 302
    assert connected["Location"] == f"{base(workspace)}/{destination.id}/"
    assert (destination.config, destination.credentials) == (
        {"ad_account_id": ACCOUNT, "api_version": "v26.0"}, {"access_token": TOKEN},
    )  # fmt: skip


def test_a_refusal_is_shown_on_its_field_and_nothing_is_saved(admin, workspace):
    response = client_for(admin).post(f"{base(workspace)}/new/meta/", {
        "name": "Meta ads", "config_ad_account_id": "act_12x", "credentials_access_token": TOKEN,
    })  # fmt: skip

    content = response.content.decode()
    assert response.status_code == 400
    field = content.split('for="id_config_ad_account_id"')[0].rsplit('<div class="field', 1)[1]
    assert field.startswith(" has-error")
    assert '<p class="field-error">Must be digits, optionally after &quot;act_&quot;</p>' in content
    with workspace_scope(workspace.id):
        assert Destination.objects.count() == 0


def test_the_destination_page_tests_in_place(admin, workspace, destination):
    client = client_for(admin)

    before = client.get(f"{base(workspace)}/{destination.id}/").content.decode()
    tested = client.post(f"{base(workspace)}/{destination.id}/test/", HTTP_HX_REQUEST="true")

    assert "Not tested yet: test the connection to check the credentials." in before
    assert "Set, ending in <code>…1234</code>" in before
    assert TOKEN not in before
    assert 'id="forwarding"' not in before  # Meta Custom Audiences takes no forwarded data
    assert tested.content.decode().startswith('<div id="test-result"')
    assert (
        f"Connected to ad account &#x27;Acme Ads&#x27; (act_{ACCOUNT})." in tested.content.decode()
    )


def test_forwarding_settings_and_lag_on_a_kind_that_forwards(admin, workspace):
    with workspace_scope(workspace.id):
        braze = services.destination_create(
            workspace=workspace, kind="braze", name="Braze", actor=ADMIN,
            config={"cluster_url": "http://127.0.0.1:9"}, credentials={"api_key": "braze-key-1"},
        )  # fmt: skip
        now = timezone.now()
        for age, status in ((300, "pending"), (60, "pending"), (900, "dead"), (1000, "sent")):
            ForwardBatch.objects.create(workspace=workspace, destination=braze, status=status,
                                        created_at=now - timedelta(seconds=age))  # fmt: skip
    client = client_for(admin)
    url = f"{base(workspace)}/{braze.id}"

    page = client.get(f"{url}/").content.decode()
    bad = client.post(f"{url}/forwarding/", {"enabled": "on", "types": ["events"],
                                             "event_names": "x" * 201})  # fmt: skip
    wanted = {"enabled": "on", "types": ["events", "profiles"],
              "event_names": "order_completed, signup"}  # fmt: skip
    saved = client.post(f"{url}/forwarding/", wanted)

    assert '<dd class="stat-value stat-value-sm" data-stat="pending">2</dd>' in page
    assert '<dd class="stat-value stat-value-sm is-bad" data-stat="dead">1</dd>' in page
    assert "5\xa0minutes old" in page
    assert 'name="types" value="memberships"' in page
    assert bad.status_code == 400
    assert '<p class="field-error">1-200 characters</p>' in bad.content.decode()
    assert saved.status_code == 302
    with workspace_scope(workspace.id):
        forwarding = Destination.objects.get(id=braze.id).forwarding
    assert {k: forwarding[k] for k in ("enabled", "types", "event_names", "traits")} == {
        "enabled": True, "types": ["events", "profiles"],
        "event_names": ["order_completed", "signup"], "traits": [],
    }  # fmt: skip


def test_editing_keeps_credentials_left_empty_and_an_unchanged_config(admin, workspace,
                                                                      destination):  # fmt: skip
    client = client_for(admin)
    url = f"{base(workspace)}/{destination.id}/edit/"
    with workspace_scope(workspace.id):
        services.destination_test(destination=destination, actor=ADMIN)

    form = client.get(url).content.decode()
    renamed = client.post(url, {"name": "Meta (EU)", "config_ad_account_id": ACCOUNT,
                                "config_api_version": "v26.0"})  # fmt: skip
    with workspace_scope(workspace.id):
        kept = Destination.objects.get()
    client.post(url, {"name": "Meta (EU)", "config_ad_account_id": ACCOUNT,
                      "credentials_access_token": "EAAB-new-token-5678"})  # fmt: skip
    with workspace_scope(workspace.id):
        changed = Destination.objects.get()

    assert 'value="1234567890"' in form
    assert "Leave empty to keep the stored one." in form
    assert TOKEN not in form
    assert renamed.status_code == 302
    assert (kept.name, kept.credentials, kept.last_test_ok) == (
        "Meta (EU)", {"access_token": TOKEN}, True,
    )  # fmt: skip
    assert (changed.credential_hints, changed.last_test_ok) == ({"access_token": "…5678"}, None)


def test_disable_then_enable_and_disconnect(admin, workspace, destination):
    client = client_for(admin)
    url = f"{base(workspace)}/{destination.id}"

    client.post(f"{url}/disable/", {"reason": "audit"})
    disabled = client.get(f"{url}/").content.decode()
    client.post(f"{url}/enable/")
    with workspace_scope(workspace.id):
        status = Destination.objects.get().status
    gone = client.post(f"{url}/delete/")

    assert "Disabled: nothing is sent; its syncs and forwarding wait. Reason: audit" in disabled
    assert status == "active"
    assert gone["Location"] == f"{base(workspace)}/"
    with workspace_scope(workspace.id):
        assert Destination.objects.count() == 0


def test_create_a_sync_from_the_destination_page(member, workspace, destination, audience, meta):
    client = client_for(member)
    url = f"{base(workspace)}/syncs/new/?destination={destination.id}"

    form = client.get(url).content.decode()
    created = client.post(url, {
        "audience": audience.id, "destination": destination.id, "mode": "incremental",
        "trigger": "schedule", "interval_minutes": 30, "identifiers": ["email"],
        "remote": "new", "remote_audience_name": "Masivo VIP",
    })  # fmt: skip

    assert 'name="identifiers" value="email" id="id_identifiers_0" checked' in form
    assert 'name="identifiers" value="phone" id="id_identifiers_1" checked' in form
    with workspace_scope(workspace.id):
        sync = AudienceSync.objects.get()
    assert created["Location"] == f"{base(workspace)}/syncs/{sync.id}/"
    assert (sync.interval_minutes, sync.identifiers, sync.remote_audience_name) == (
        30, ["email"], "Masivo VIP",
    )  # fmt: skip
    assert meta.audiences[sync.remote_audience_id].name == "Masivo VIP"


def test_a_sync_refusal_is_shown_on_its_field(member, workspace, destination, audience):
    response = client_for(member).post(f"{base(workspace)}/syncs/new/", {
        "audience": audience.id, "destination": destination.id, "mode": "full",
        "trigger": "streaming", "remote": "existing", "remote_audience_id": "6001",
    })  # fmt: skip

    content = response.content.decode()
    assert response.status_code == 400
    field = content.split('<span class="field-label">Mode</span>')[0].rsplit('<div class="field', 1)
    assert field[1].startswith(" has-error")
    assert '<p class="field-error">Streaming syncs are incremental</p>' in content
    with workspace_scope(workspace.id):
        assert AudienceSync.objects.count() == 0


def test_the_sync_page_shows_runs_skips_and_failed_records(member, workspace, sync):
    content = client_for(member).get(f"{base(workspace)}/syncs/{sync.id}/").content.decode()

    assert "VIP → Meta ads" in content
    assert '<dd class="stat-value" data-count="added">0</dd>' in content  # the dead run's
    assert "no_consent: 3" in content
    assert "1,200 ms" in content
    assert "Meta kept answering 500" in content
    assert f'action="/w/{workspace.id}/destinations/syncs/{sync.id}/runs/' in content  # replay
    assert "invalid email hash" in content
    assert "1 customer the destination refused" in content
    assert "5\xa0minutes ago" in content


def test_the_progress_partial_polls_only_while_a_run_is_live(member, workspace, sync):
    client = client_for(member)
    url = f"{base(workspace)}/syncs/{sync.id}/progress/"

    finished = client.get(url).content.decode()
    with workspace_scope(workspace.id):
        SyncRun.objects.filter(status="dead").update(status="running", to_add=4, added=1)
    live = client.get(url).content.decode()

    assert finished.startswith('<div id="sync-progress"')
    assert "hx-trigger" not in finished
    assert f'hx-get="{url}?live=1" hx-trigger="every 2s"' in live
    assert 'data-percent="25"' in live
    with workspace_scope(workspace.id):
        SyncRun.objects.filter(status="running").update(status="succeeded")
    done = client.get(f"{url}?live=1", HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"  # the page reloads with the history
    assert "HX-Refresh" not in client.get(url, HTTP_HX_REQUEST="true")


def test_run_now_pause_resume_and_replay(member, workspace, sync):
    client = client_for(member)
    url = f"{base(workspace)}/syncs/{sync.id}"
    with workspace_scope(workspace.id):
        dead = SyncRun.objects.get(status="dead")

    replayed = client.post(f"{url}/runs/{dead.id}/replay/")
    again = client.post(f"{url}/run/")
    client.post(f"{url}/pause/")
    refused = client.post(f"{url}/run/", follow=True)

    assert replayed["Location"] == f"{url}/"
    assert again.status_code == 302
    assert "The sync is paused; resume it first." in refused.content.decode()
    with workspace_scope(workspace.id):
        assert list(SyncRun.objects.order_by("id").values_list("status", "reason")) == [
            ("succeeded", "created"), ("dead", "manual"), ("queued", "replay"),
        ]  # fmt: skip
        assert AudienceSync.objects.get().status == "paused"
    client.post(f"{url}/resume/")
    with workspace_scope(workspace.id):
        assert AudienceSync.objects.get().status == "active"


def test_the_audience_page_loads_its_syncs(member, workspace, audience, sync):
    client = client_for(member)

    page = client.get(f"/w/{workspace.id}/audiences/{audience.id}/").content.decode()
    panel = client.get(f"/w/{workspace.id}/audiences/{audience.id}/syncs/").content.decode()

    assert f'hx-get="/w/{workspace.id}/audiences/{audience.id}/syncs/"' in page
    assert f"/destinations/syncs/new/?audience={audience.id}" in page
    assert f'href="/w/{workspace.id}/destinations/syncs/{sync.id}/">Sync {sync.id}</a>' in panel
    assert ">Meta ads</a>" in panel


def test_viewers_see_pages_without_controls_and_may_not_act(viewer, workspace, sync):
    client = client_for(viewer)
    destination_url = f"{base(workspace)}/{sync.destination_id}"

    page = client.get(f"{destination_url}/").content.decode()
    refused = [client.post(f"{destination_url}/disable/"),
               client.post(f"{base(workspace)}/syncs/{sync.id}/pause/"),
               client.get(f"{base(workspace)}/new/meta/")]  # fmt: skip

    assert "Test connection" not in page
    assert [r.status_code for r in refused] == [403, 403, 403]
    with workspace_scope(workspace.id):
        assert (Destination.objects.get().status, AudienceSync.objects.get().status) == (
            "active", "active",
        )  # fmt: skip


def test_a_marketer_may_not_connect_destinations(member, workspace):
    assert client_for(member).get(f"{base(workspace)}/new/meta/").status_code == 403


def test_another_workspaces_destination_and_sync_are_404(outsider, workspace, sync):
    client = client_for(outsider)
    other = f"/w/{outsider.organization.workspaces.first().id}/destinations"

    paths = [f"{other}/{sync.destination_id}/", f"{other}/syncs/{sync.id}/",
             f"{other}/syncs/{sync.id}/progress/", f"{base(workspace)}/"]  # fmt: skip

    assert [client.get(path).status_code for path in paths] == [404] * 4
