"""Settings → Profiles: consent regime, purchase events and device token lifetime."""

import pytest

from masivo.tenancy.context import workspace_scope
from profiles.models import ProfileSettings
from profiles.services.settings import profile_settings_get

pytestmark = pytest.mark.django_db

POSTED = {
    "consent_regime": "opt_out",
    "purchase_event_names": " Order Completed, purchase ,purchase",
    "purchase_value_properties": "total",
    "device_token_ttl_days": "30",
}


def url(workspace) -> str:
    return f"/w/{workspace.id}/settings/profiles/"


def stored(workspace) -> tuple:
    with workspace_scope(workspace.id):
        settings = profile_settings_get(workspace=workspace)
    return (
        settings.consent_regime,
        settings.purchase_event_names,
        settings.purchase_value_properties,
        settings.device_token_ttl_days,
    )


DEFAULTS = (
    "opt_in",
    ["purchase", "Order Completed", "order_completed"],
    ["value", "revenue", "total"],
    270,
)


def test_an_owner_saves_the_profile_settings(owner_client, workspace):
    response = owner_client.post(url(workspace), POSTED, follow=True)

    assert response.redirect_chain == [(f"/w/{workspace.id}/settings/", 302)]
    assert "Profile settings saved." in response.content.decode()
    assert stored(workspace) == ("opt_out", ["Order Completed", "purchase"], ["total"], 30)


def test_the_settings_page_shows_the_current_values(owner_client, workspace):
    form = owner_client.get(f"/w/{workspace.id}/settings/").context["profile_form"]

    assert form.initial == {
        "consent_regime": "opt_in",
        "vendor_consent_required": False,
        "purchase_event_names": "purchase, Order Completed, order_completed",
        "purchase_value_properties": "value, revenue, total",
        "device_token_ttl_days": 270,
        "event_retention_days": None,
    }


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"consent_regime": "maybe"},
            {
                "consent_regime": [
                    "Select a valid choice. maybe is not one of the available choices."
                ]
            },
        ),
        ({"purchase_event_names": " , "}, {"purchase_event_names": ["Give at least one name."]}),
        (
            {"device_token_ttl_days": "0"},
            {"device_token_ttl_days": ["Ensure this value is greater than or equal to 1."]},
        ),
    ],
)
def test_a_bad_value_is_a_form_error_and_changes_nothing(owner_client, workspace, changes, errors):
    response = owner_client.post(url(workspace), POSTED | changes)

    assert response.status_code == 400
    assert response.context["profile_form"].errors == errors
    assert stored(workspace) == DEFAULTS


@pytest.mark.parametrize("client_fixture", ["member_client", "viewer_client"])
def test_marketers_and_viewers_see_values_and_posting_changes_nothing(
    request, workspace, client_fixture
):
    client = request.getfixturevalue(client_fixture)

    content = client.get(f"/w/{workspace.id}/settings/").content.decode()
    response = client.post(url(workspace), POSTED)

    assert "Not recorded means denied (opt-in)" in content
    assert "Save profile settings" not in content
    assert response.status_code == 403
    assert stored(workspace) == DEFAULTS


def test_an_outsider_gets_a_404_and_changes_nothing(outsider_client, workspace):
    assert outsider_client.post(url(workspace), POSTED).status_code == 404
    with workspace_scope(workspace.id):
        assert ProfileSettings.objects.count() == 0
