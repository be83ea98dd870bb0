"""/api/v1/destinations: the catalogue of kinds, connect (credentials in, hints out), change,
test against the Meta fake, enable / disable, forwarding settings with their lag, delete; bad
input named by field, roles, and another workspace's ids."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from destinations.models import Destination, ForwardBatch
from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from tests.conftest import bearer_client, mint_secret_key
from tests.fakes.meta import meta_fake, meta_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

URL = "/api/v1/destinations"
TOKEN = "EAAB-meta-token-1234"
ACCOUNT = "1234567890"


def post(client, url, data=None):
    return client.post(url, data if data is not None else {}, content_type="application/json")


def meta_body(**changes) -> dict:
    return {"kind": "meta", "name": "Meta ads", "config": {"ad_account_id": f"act_{ACCOUNT}"},
            "credentials": {"access_token": TOKEN}} | changes  # fmt: skip


@pytest.fixture
def meta(meta_fake):  # noqa: F811
    meta_fake.add_token(TOKEN)
    meta_fake.add_account(ACCOUNT, "Acme Ads")
    return meta_fake


def connect(api, **changes) -> dict:
    response = post(api, URL, meta_body(**changes))
    assert response.status_code == 201, response.content
    return response.json()


def without_times(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("id", "created_at", "updated_at")}


def test_connect_shows_config_and_hints_never_credentials(api, workspace):
    answer = connect(api)

    assert without_times(answer) == {
        "kind": "meta", "name": "Meta ads", "key": "meta", "status": "active",
        "disabled_reason": "", "config": {"ad_account_id": ACCOUNT, "api_version": "v26.0"},
        "credential_hints": {"access_token": "…1234"}, "rate_limit_per_second": None,
        "last_tested_at": None, "last_test_ok": None, "last_test_detail": "", "sync_count": 0,
        "created_by": answer["created_by"],
    }  # fmt: skip
    assert answer["created_by"].startswith("api_key:")
    assert TOKEN not in api.get(f"{URL}/{answer['id']}").content.decode()
    assert [d["id"] for d in api.get(URL).json()["results"]] == [answer["id"]]
    with workspace_scope(workspace.id):
        assert Destination.objects.get().credentials == {"access_token": TOKEN}


def test_a_second_destination_of_a_kind_gets_the_next_key_and_a_taken_key_is_409(api):
    assert connect(api)["key"] == "meta"
    assert connect(api)["key"] == "meta-2"

    taken = post(api, URL, meta_body(key="meta"))

    assert taken.status_code == 409
    assert taken.json() == {"detail": "another destination has this key", "code": "conflict",
                            "errors": {"key": ["another destination has this key"]}}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"kind": "fax"}, "kind", None),
        ({"kind": 3}, "kind", "must be a string"),
        ({"config": {}}, "config.ad_account_id", "This field is required."),
        ({"config": {"ad_account_id": "act_x1"}}, "config.ad_account_id",
         'must be digits, optionally after "act_"'),
        ({"config": {"ad_account_id": "1", "extra": 1}}, "config.extra", "unknown field"),
        ({"credentials": {}}, "credentials.access_token", "This field is required."),
        ({"config": "x"}, "config", None),
        ({"key": "Not A Key"}, "key", None),
        ({"name": ""}, "name", "This field may not be blank."),
        ({"surprise": 1}, "surprise", "unknown field"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field(api, workspace, changes, field, message):
    response = post(api, URL, meta_body(**changes))

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [field], errors
    if message is not None:
        assert errors[field] == [message]
    with workspace_scope(workspace.id):
        assert Destination.objects.count() == 0


def test_the_catalogue_describes_each_kind_with_its_fields(api):
    kinds = api.get(f"{URL}/kinds").json()

    meta = next(kind for kind in kinds if kind["kind"] == "meta")
    assert meta == {
        "kind": "meta",
        "label": "Meta Custom Audiences",
        "summary": meta["summary"],
        "capabilities": ["audiences", "replace"],
        "identifiers": ["email", "phone", "first_name", "last_name", "country", "external_id",
                        "madid"],
        "default_identifiers": ["email", "phone"],
        "consent_purpose": "advertising",
        "config_fields": [
            {"name": "ad_account_id", "label": "Ad account id", "type": "string",
             "required": True, "secret": False, "help": 'The ad account id, with or without "act_"',
             "choices": []},
            {"name": "api_version", "label": "Api version", "type": "string", "required": False,
             "secret": False, "help": "", "choices": []},
        ],
        "credentials_fields": [
            {"name": "access_token", "label": "Access token", "type": "string", "required": True,
             "secret": True, "help": "", "choices": []},
            {"name": "app_secret", "label": "App secret", "type": "string", "required": False,
             "secret": True, "help": "", "choices": []},
        ],
    }  # fmt: skip
    assert [kind["kind"] for kind in kinds] == [
        "meta", "meta_capi", "google_ads", "tiktok", "tiktok_events", "braze", "webhook", "s3",
        "ga4",
    ]  # fmt: skip


def test_test_connection_against_the_fake_records_the_result(api, meta):
    destination_id = connect(api)["id"]

    tested = post(api, f"{URL}/{destination_id}/test")

    assert tested.status_code == 200
    body = tested.json()
    assert {k: body[k] for k in ("ok", "detail")} == {
        "ok": True, "detail": f"Connected to ad account 'Acme Ads' (act_{ACCOUNT}).",
    }  # fmt: skip
    stored = api.get(f"{URL}/{destination_id}").json()
    assert (stored["last_test_ok"], stored["last_tested_at"]) == (True, body["tested_at"])


def test_a_refused_token_is_a_failed_test_not_an_error(api, meta):
    destination_id = connect(api, credentials={"access_token": "unknown-token"})["id"]

    tested = post(api, f"{URL}/{destination_id}/test").json()

    assert tested["ok"] is False
    assert tested["detail"] != ""
    assert api.get(f"{URL}/{destination_id}").json()["last_test_ok"] is False


def test_patch_merges_credentials_and_clears_the_last_test(api, workspace, meta):
    destination_id = connect(api)["id"]
    post(api, f"{URL}/{destination_id}/test")

    patched = api.patch(
        f"{URL}/{destination_id}",
        {"name": "Meta (EU)", "credentials": {"app_secret": "s3cret-app-secret"},
         "rate_limit_per_second": 5},
        content_type="application/json",
    )  # fmt: skip

    assert patched.status_code == 200, patched.content
    body = patched.json()
    assert {k: body[k] for k in ("name", "credential_hints", "rate_limit_per_second",
                                 "last_test_ok", "last_tested_at")} == {
        "name": "Meta (EU)", "credential_hints": {"access_token": "…1234", "app_secret": "…cret"},
        "rate_limit_per_second": 5, "last_test_ok": None, "last_tested_at": None,
    }  # fmt: skip
    with workspace_scope(workspace.id):
        assert Destination.objects.get().credentials == {
            "access_token": TOKEN, "app_secret": "s3cret-app-secret",
        }  # fmt: skip
    bad = api.patch(f"{URL}/{destination_id}", {"config": {"ad_account_id": "x"}},
                    content_type="application/json")  # fmt: skip
    assert bad.json()["errors"] == {
        "config.ad_account_id": ['must be digits, optionally after "act_"']
    }


def test_disable_with_a_reason_then_enable(api):
    destination_id = connect(api)["id"]

    disabled = post(api, f"{URL}/{destination_id}/disable", {"reason": "paused for audit"})
    enabled = post(api, f"{URL}/{destination_id}/enable")

    assert (disabled.json()["status"], disabled.json()["disabled_reason"]) == (
        "disabled", "paused for audit",
    )  # fmt: skip
    assert (enabled.json()["status"], enabled.json()["disabled_reason"]) == ("active", "")


def test_forwarding_reads_settings_and_lag_and_refuses_what_the_kind_does_not_take(api, workspace):
    destination_id = connect(api)["id"]
    now = timezone.now()
    with workspace_scope(workspace.id):
        for age, status in ((30, "pending"), (10, "pending"), (90, "dead"), (120, "sent")):
            ForwardBatch.objects.create(
                workspace=workspace, destination_id=destination_id, status=status,
                created_at=now - timedelta(seconds=age),
            )  # fmt: skip

    read = api.get(f"{URL}/{destination_id}/forwarding").json()
    refused = api.put(f"{URL}/{destination_id}/forwarding", {"enabled": True},
                      content_type="application/json")  # fmt: skip
    bad_names = api.put(f"{URL}/{destination_id}/forwarding",
                        {"enabled": False, "event_names": ["ok", 7]},
                        content_type="application/json")  # fmt: skip

    assert read["oldest_pending_age_seconds"] in (30, 31)
    assert {k: v for k, v in read.items() if k not in ("oldest_pending_at",
                                                       "oldest_pending_age_seconds")} == {
        "enabled": False, "types": [], "event_names": [], "traits": [], "since": None,
        "offered_types": [], "pending_batches": 2, "dead_batches": 1,
    }  # fmt: skip
    assert refused.status_code == 400
    assert refused.json()["errors"] == {
        "enabled": ["Meta Custom Audiences does not take forwarded data"]
    }
    assert bad_names.json()["errors"] == {"event_names.1": ["must be a string"]}


def test_the_list_takes_the_same_queries_for_one_destination_or_many(api, workspace):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(URL).status_code == 200
        return len(captured)

    connect(api)
    one = queries()
    connect(api)
    connect(api)

    assert queries() == one
    assert [d["key"] for d in api.get(URL).json()["results"]] == ["meta-3", "meta-2", "meta"]


def test_forwarding_on_for_a_kind_that_takes_it(api):
    braze = connect(api, kind="braze", name="Braze", config={"cluster_url": "http://127.0.0.1:9"},
                    credentials={"api_key": "braze-key-1"})  # fmt: skip
    url = f"{URL}/{braze['id']}/forwarding"

    put = api.put(url, {"enabled": True, "types": ["events", "memberships"],
                        "event_names": [" signup ", "order_completed", "signup"]},
                  content_type="application/json")  # fmt: skip
    wrong_type = api.put(url, {"enabled": True, "types": ["events", "pigeons"]},
                         content_type="application/json")  # fmt: skip

    assert put.status_code == 200, put.content
    body = put.json()
    assert body["since"] is not None
    assert {k: body[k] for k in ("enabled", "types", "event_names", "traits", "offered_types",
                                 "pending_batches", "dead_batches")} == {
        "enabled": True, "types": ["events", "memberships"],
        "event_names": ["order_completed", "signup"], "traits": [],
        "offered_types": ["events", "profiles", "memberships"], "pending_batches": 0,
        "dead_batches": 0,
    }  # fmt: skip
    assert api.get(url).json() == body
    assert wrong_type.json()["errors"] == {"types.1": ["one of events, profiles, memberships"]}


def test_delete_then_it_is_gone(api, workspace):
    destination_id = connect(api)["id"]

    assert api.delete(f"{URL}/{destination_id}").status_code == 204
    assert api.get(f"{URL}/{destination_id}").status_code == 404


def test_viewers_read_marketers_may_not_connect_or_change(api, workspace):
    destination_id = connect(api)["id"]
    viewer = bearer_client(mint_secret_key(workspace, Role.VIEWER))
    marketer = bearer_client(mint_secret_key(workspace, Role.MARKETER))

    assert viewer.get(f"{URL}/{destination_id}").status_code == 200
    assert viewer.get(f"{URL}/kinds").status_code == 200
    refused = [
        post(marketer, URL, meta_body()),
        post(marketer, f"{URL}/{destination_id}/disable"),
        post(marketer, f"{URL}/{destination_id}/test"),
        marketer.delete(f"{URL}/{destination_id}"),
        post(viewer, f"{URL}/{destination_id}/enable"),
    ]

    assert [r.status_code for r in refused] == [403] * 5
    assert refused[0].json() == {
        "detail": "the marketer role may not manage destinations", "code": "permission_denied",
    }  # fmt: skip
    with workspace_scope(workspace.id):
        destination = Destination.objects.get()
    assert (destination.status, destination.last_tested_at) == ("active", None)


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("patch", ""), ("delete", ""), ("post", "/test"), ("post", "/enable"),
     ("post", "/disable"), ("get", "/forwarding"), ("put", "/forwarding")],
)  # fmt: skip
def test_another_workspaces_destination_is_404(api, other_api, method, suffix):
    destination_id = connect(api)["id"]

    response = getattr(other_api, method)(
        f"{URL}/{destination_id}{suffix}", {"enabled": False}, content_type="application/json"
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
