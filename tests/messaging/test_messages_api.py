"""/api/v1/messages, /api/v1/messaging/suppressions and /api/v1/messaging/contact-policy."""

import pytest

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging.models import Message, Suppression
from tests.conftest import bearer_client, mint_secret_key
from tests.factories import CustomerFactory
from tests.messaging.test_policy_support import make_template, suppress

pytestmark = pytest.mark.django_db

GRANTED = {"email_marketing": {"status": "granted"}}


@pytest.fixture
def ana(workspace):
    with workspace_scope(workspace.id):
        return CustomerFactory(
            workspace=workspace, email="ana@example.com", external_id="ana", consent={}
        )


@pytest.fixture
def template(workspace):
    with workspace_scope(workspace.id):
        return make_template(workspace, "email", name="Receipt")


def send(client, body, key="order-7"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post("/api/v1/messages", body, content_type="application/json", **headers)


def count(workspace, model=Message):
    with workspace_scope(workspace.id):
        return model.objects.count()


def test_a_transactional_send_skips_consent_and_answers_the_decision(api, ana, template):
    body = {"customer_id": ana.id, "channel": "email", "template_id": template.id,
            "event": {"order": 7}}  # fmt: skip

    response = send(api, body)

    assert response.status_code == 201, response.content
    answer = response.json()
    assert {key: answer[key] for key in ("customer_id", "channel", "kind", "status", "decision",
                                         "address", "template_id", "dedupe_key", "origin")} == {
        "customer_id": ana.id, "channel": "email", "kind": "transactional", "status": "queued",
        "decision": {"code": "ok", "text": "queued"}, "address": "ana@example.com",
        "template_id": template.id, "dedupe_key": "api:order-7", "origin": {"source": "api"},
    }  # fmt: skip


def test_marketing_without_consent_is_suppressed_and_a_hard_bounce_stops_even_transactional(
    api, workspace, ana, template
):
    marketing = send(api, {"external_id": "ana", "channel": "email", "template_id": template.id,
                           "kind": "marketing"}, key="m1")  # fmt: skip
    with workspace_scope(workspace.id):
        suppress(workspace, "email", "ana@example.com", "hard_bounce")
    receipt = send(api, {"email": "ANA@example.com", "channel": "email",
                         "template_id": template.id}, key="t1")  # fmt: skip

    assert (marketing.status_code, marketing.json()["decision"]) == (
        201, {"code": "no_consent", "text": "suppressed: no consent"},
    )  # fmt: skip
    assert (receipt.status_code, receipt.json()["status"], receipt.json()["decision"]) == (
        201, "suppressed", {"code": "suppressed", "text": "suppressed: hard bounce"},
    )  # fmt: skip


def test_the_same_key_and_body_answer_the_same_message_with_200(api, workspace, ana, template):
    body = {"customer_id": ana.id, "channel": "email", "template_id": template.id}
    first = send(api, body)

    again = send(api, body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert count(workspace) == 1


def test_the_same_key_with_another_body_is_a_409_naming_the_difference(
    api, workspace, ana, template
):
    body = {"customer_id": ana.id, "channel": "email", "template_id": template.id}
    send(api, body)

    response = send(api, body | {"kind": "marketing", "event": {"x": 1}})

    assert response.status_code == 409
    assert response.json() == {
        "detail": "this Idempotency-Key was used for another request (its kind, event differ); "
        "use a new key for a new message",
        "code": "idempotency_key_reused",
        "errors": {"Idempotency-Key": [
            "this Idempotency-Key was used for another request (its kind, event differ); "
            "use a new key for a new message"
        ]},
    }  # fmt: skip
    assert count(workspace) == 1


@pytest.mark.parametrize(
    ("key", "body", "field", "message"),
    [
        (None, {}, "Idempotency-Key", "the Idempotency-Key header is required"),
        ("k" * 256, {}, "Idempotency-Key", "at most 255 characters"),
        ("k", {"channel": "email"}, "template_id", "This field is required."),
        ("k", {"channel": "fax", "template_id": 1, "customer_id": 1}, "channel",
         '"fax" is not a valid choice.'),
        ("k", {"channel": "email", "template_id": 1}, "customer_id",
         "exactly one of customer_id, external_id or email"),
        ("k", {"channel": "email", "template_id": 1, "customer_id": 1, "email": "a@b.co"},
         "customer_id", "exactly one of customer_id, external_id or email"),
        ("k", {"channel": "email", "template_id": 1, "customer_id": 1, "colour": "red"},
         "colour", "unknown field"),
        ("k", {"channel": "email", "template_id": 1, "customer_id": 1, "event": [1]},
         "event", 'Expected a dictionary of items but got type "list".'),
    ],
)  # fmt: skip
def test_bad_requests_are_400_naming_the_field(api, workspace, key, body, field, message):
    response = send(api, body, key=key)

    assert response.status_code == 400, response.content
    assert response.json()["errors"][field] == [message]
    assert count(workspace) == 0


def test_a_template_for_another_channel_is_refused(api, workspace, ana, template):
    response = send(api, {"customer_id": ana.id, "channel": "sms", "template_id": template.id})

    assert response.status_code == 400
    assert response.json()["errors"] == {"template_id": ["the template is for email, not sms"]}


def test_another_workspaces_customer_or_template_is_a_404(
    api, workspace, other_workspace, ana, template
):
    with workspace_scope(other_workspace.id):
        foreign_customer = CustomerFactory(workspace=other_workspace, email="x@example.com")
        foreign_template = make_template(other_workspace)

    answers = [
        send(api, {"customer_id": foreign_customer.id, "channel": "email",
                   "template_id": template.id}, key="a"),
        send(api, {"email": "x@example.com", "channel": "email", "template_id": template.id},
             key="b"),
        send(api, {"customer_id": ana.id, "channel": "email",
                   "template_id": foreign_template.id}, key="c"),
    ]  # fmt: skip

    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert count(workspace) == 0
    assert count(other_workspace) == 0


def test_a_viewer_cannot_send(workspace, ana, template):
    viewer = bearer_client(mint_secret_key(workspace, role=Role.VIEWER))

    response = send(viewer, {"customer_id": ana.id, "channel": "email", "template_id": template.id})

    assert response.status_code == 403
    assert count(workspace) == 0


def test_the_log_filters_and_pages(api, workspace, ana, template, django_assert_num_queries):
    for key, channel in (("1", "email"), ("2", "email"), ("3", "in_app")):
        with workspace_scope(workspace.id):
            in_app = make_template(workspace, "in_app") if channel == "in_app" else template
        send(api, {"customer_id": ana.id, "channel": channel, "template_id": in_app.id}, key=key)
    with workspace_scope(workspace.id):
        bob = CustomerFactory(workspace=workspace)
    send(api, {"customer_id": bob.id, "channel": "email", "template_id": template.id}, key="4")

    with django_assert_num_queries(1):  # the page (the key is cached by now)
        everything = api.get("/api/v1/messages?limit=2")
    anas_email = api.get(f"/api/v1/messages?customer={ana.id}&channel=email")
    by_template = api.get(f"/api/v1/messages?template={template.id}&status=queued&source=api")
    second_page = api.get(everything.json()["next"])

    def keys(response):
        return [message["dedupe_key"] for message in response.json()["results"]]

    assert keys(everything) == ["api:4", "api:3"]
    assert keys(second_page) == ["api:2", "api:1"]
    assert keys(anas_email) == ["api:2", "api:1"]
    assert keys(by_template) == ["api:4", "api:2", "api:1"]
    assert keys(api.get("/api/v1/messages?created_after=2999-01-01T00:00:00Z")) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("customer=ana", "customer"),
        ("status=lost", "status"),
        ("channel=fax", "channel"),
        ("created_after=yesterday", "created_after"),
        ("created_before=2026-01-01T00:00:00", "created_before"),
    ],
)
def test_bad_filters_are_400(api, query, field):
    response = api.get(f"/api/v1/messages?{query}")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_one_message_has_its_decision_and_history(api, ana, template):
    sent = send(api, {"customer_id": ana.id, "channel": "email", "template_id": template.id,
                      "kind": "marketing"}).json()  # fmt: skip

    detail = api.get(f"/api/v1/messages/{sent['id']}")

    assert detail.status_code == 200
    assert detail.json()["decision"] == {"code": "no_consent", "text": "suppressed: no consent"}
    assert [(change["status"], change["detail"]) for change in detail.json()["status_history"]] == [
        ("suppressed", "suppressed: no consent")
    ]


def test_another_workspaces_message_or_suppression_is_a_404(api, other_workspace):
    with workspace_scope(other_workspace.id):
        customer = CustomerFactory(workspace=other_workspace)
        message = Message.objects.create(
            workspace=other_workspace, customer=customer, channel="email", kind="marketing",
            dedupe_key="x",
        )  # fmt: skip
        suppression = suppress(other_workspace, "email", "x@example.com", "manual")

    answers = [
        api.get(f"/api/v1/messages/{message.id}"),
        api.get(f"/api/v1/messaging/suppressions/{suppression.id}"),
        api.delete(f"/api/v1/messaging/suppressions/{suppression.id}"),
    ]

    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert count(other_workspace, Suppression) == 1


SUPPRESSIONS = "/api/v1/messaging/suppressions"


def test_suppress_list_and_remove_an_address(api, workspace):
    created = api.post(SUPPRESSIONS, {"channel": "email", "address": " Ana@Example.com "},
                       content_type="application/json")  # fmt: skip
    api.post(SUPPRESSIONS, {"channel": "sms", "address": "+525512345678", "reason": "unsubscribe"},
             content_type="application/json")  # fmt: skip

    assert created.status_code == 201, created.content
    assert {k: created.json()[k] for k in ("channel", "address", "reason")} == {
        "channel": "email", "address": "ana@example.com", "reason": "manual",
    }  # fmt: skip
    listed = api.get(f"{SUPPRESSIONS}?channel=email").json()["results"]
    assert [row["address"] for row in listed] == ["ana@example.com"]
    assert [
        r["address"] for r in api.get(f"{SUPPRESSIONS}?reason=unsubscribe").json()["results"]
    ] == ["+525512345678"]

    removed = api.delete(f"{SUPPRESSIONS}/{created.json()['id']}")

    assert removed.status_code == 204
    assert count(workspace, Suppression) == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"channel": "email", "address": "not an email"}, 400, "address"),
        ({"channel": "sms", "address": "12"}, 400, "address"),
        ({"channel": "push", "address": "x"}, 400, "channel"),
        ({"channel": "email", "address": "a@example.com", "reason": "bored"}, 400, "reason"),
        ({"channel": "email", "address": "ana@example.com"}, 409, "address"),
    ],
)
def test_bad_suppressions(api, workspace, body, status, field):
    with workspace_scope(workspace.id):
        suppress(workspace, "email", "ana@example.com", "manual")

    response = api.post(SUPPRESSIONS, body, content_type="application/json")

    assert response.status_code == status, response.content
    assert list(response.json()["errors"]) == [field]
    assert count(workspace, Suppression) == 1


POLICY = "/api/v1/messaging/contact-policy"


def test_the_contact_policy_defaults_and_changes(api):
    before = api.get(POLICY).json()
    changed = api.put(POLICY, {"frequency_caps": [{"channel": "*", "limit": 3, "window_hours": 24}],
                               "quiet_hours_enabled": True, "quiet_hours_start": "22:00",
                               "quiet_hours_channels": ["sms", "email"]},
                      content_type="application/json")  # fmt: skip

    assert {k: v for k, v in before.items() if k != "updated_at"} == {
        "frequency_caps": [], "quiet_hours_enabled": False, "quiet_hours_start": "21:00",
        "quiet_hours_end": "08:00", "quiet_hours_action": "defer",
        "quiet_hours_channels": ["push", "whatsapp", "sms"],
    }  # fmt: skip
    assert changed.status_code == 200, changed.content
    assert {k: v for k, v in api.get(POLICY).json().items() if k != "updated_at"} == {
        "frequency_caps": [{"channel": "*", "limit": 3, "window_hours": 24}],
        "quiet_hours_enabled": True, "quiet_hours_start": "22:00", "quiet_hours_end": "08:00",
        "quiet_hours_action": "defer", "quiet_hours_channels": ["email", "sms"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"frequency_caps": {"channel": "*"}}, "frequency_caps"),
        ({"frequency_caps": [{"channel": "*", "limit": 0, "window_hours": 24}]}, "frequency_caps"),
        ({"frequency_caps": [{"channel": "*", "limit": 1, "window_hours": 8761}]},
         "frequency_caps"),
        ({"frequency_caps": [{"channel": "fax", "limit": 1, "window_hours": 1}]},
         "frequency_caps"),
        ({"frequency_caps": [{"channel": "*", "limit": 1}]}, "frequency_caps"),
        ({"frequency_caps": [{"channel": "*", "limit": 1, "window_hours": 1, "x": 1}]},
         "frequency_caps"),
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start"),
        ({"quiet_hours_end": "8am"}, "quiet_hours_end"),
        ({"quiet_hours_action": "later"}, "quiet_hours_action"),
        ({"quiet_hours_channels": ["fax"]}, "quiet_hours_channels"),
        ({"quiet_hours_enabled": "yes"}, "quiet_hours_enabled"),
        ({"colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_bad_contact_policies_are_400_naming_the_field(api, body, field):
    before = api.get(POLICY).json()

    response = api.put(POLICY, body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [field]
    assert api.get(POLICY).json() == before


def test_a_marketer_reads_but_cannot_change_the_contact_policy(workspace):
    marketer = bearer_client(mint_secret_key(workspace, role=Role.MARKETER))

    assert marketer.get(POLICY).status_code == 200
    assert marketer.put(POLICY, {"quiet_hours_enabled": True},
                        content_type="application/json").status_code == 403  # fmt: skip
    assert marketer.get(POLICY).json()["quiet_hours_enabled"] is False
