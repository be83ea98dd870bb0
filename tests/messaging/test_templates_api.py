"""/api/v1/messaging/templates: create (v1), edit (v2...), versions, archive or delete, preview;
tenant-scoped, marketers may write, viewers only read."""

import pytest

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.roles import Role
from messaging.models import Message, Template, TemplateVersion
from tests.conftest import bearer_client, mint_secret_key
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/messaging/templates"
EMAIL = {
    "subject": "Hola {{ customer.first_name }}",
    "html": "<p>Hola {{ customer.first_name }}, {{ event.product|default('amiga') }}</p>",
}


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def patch(client, url, body):
    return client.patch(url, body, content_type="application/json")


@pytest.fixture
def marketer_api(workspace):
    return bearer_client(mint_secret_key(workspace, role=Role.MARKETER))


@pytest.fixture
def template(marketer_api):
    response = post(marketer_api, URL, {"name": "Welcome", "channel": "email", "content": EMAIL})
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def ana(workspace):
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, first_name="Ana", locale="es-MX")


def stored_versions(workspace, template_id):
    with workspace_scope(workspace.id):
        return list(
            TemplateVersion.objects.filter(template_id=template_id)
            .order_by("number")
            .values_list("number", "content")
        )


def test_create_answers_the_template_with_version_1(template, workspace):
    assert {
        key: template[key] for key in template if key not in {"id", "created_at", "updated_at"}
    } == {
        "name": "Welcome",
        "channel": "email",
        "description": "",
        "is_archived": False,
        "current_version": 1,
        "version": {
            "number": 1,
            "content": EMAIL | {"preheader": "", "text": ""},
            "locales": {},
            "created_by": template["version"]["created_by"],
            "created_at": template["version"]["created_at"],
        },
    }
    assert template["version"]["created_by"].startswith("api_key:")
    assert stored_versions(workspace, template["id"]) == [
        (1, EMAIL | {"preheader": "", "text": ""})
    ]


def test_editing_content_writes_a_new_version_and_keeps_the_old(marketer_api, template, workspace):
    url = f"{URL}/{template['id']}"
    renamed = patch(marketer_api, url, {"name": "Welcome!"})
    edited = patch(marketer_api, url, {"content": EMAIL | {"subject": "Hi"}})

    assert renamed.json()["current_version"] == 1
    assert edited.status_code == 200, edited.content
    assert (edited.json()["name"], edited.json()["current_version"]) == ("Welcome!", 2)
    assert edited.json()["version"]["content"]["subject"] == "Hi"
    assert [number for number, _ in stored_versions(workspace, template["id"])] == [1, 2]
    listing = marketer_api.get(f"{url}/versions").json()["results"]
    assert [(v["number"], v["content"]["subject"]) for v in listing] == [
        (2, "Hi"),
        (1, "Hola {{ customer.first_name }}"),
    ]
    first = marketer_api.get(f"{url}/versions/1")
    assert first.json()["content"]["subject"] == "Hola {{ customer.first_name }}"
    assert marketer_api.get(f"{url}/versions/3").status_code == 404
    assert marketer_api.get(f"{url}/versions/one").status_code == 404
    assert marketer_api.get(f"{url}/versions/99999999999").status_code == 404


def test_locales_alone_write_a_version_carrying_the_content(marketer_api, template):
    edited = patch(
        marketer_api, f"{URL}/{template['id']}", {"locales": {"es": {"subject": "Hola"}}}
    )

    assert edited.json()["version"]["number"] == 2
    assert edited.json()["version"]["content"] == template["version"]["content"]
    assert edited.json()["version"]["locales"] == {"es": {"subject": "Hola"}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "channel": "email", "content": {"html": "x"}}, "content.subject"),
        (
            {"name": "X", "channel": "email", "content": {"subject": "{{", "html": "x"}},
            "content.subject",
        ),
        ({"name": "X", "channel": "fax", "content": {}}, "channel"),
        ({"name": "", "channel": "sms", "content": {"body": "x"}}, "name"),
        ({"name": "X", "channel": "sms", "content": {"body": "x"}, "extra": 1}, "extra"),
        ({"name": "X", "channel": "sms", "content": "x"}, "content"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(marketer_api, workspace, body, field):
    response = post(marketer_api, URL, body)

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    with workspace_scope(workspace.id):
        assert Template.objects.count() == 0


def test_a_second_template_with_the_name_is_a_409(marketer_api, template):
    response = post(
        marketer_api, URL, {"name": "Welcome", "channel": "sms", "content": {"body": "x"}}
    )

    assert response.status_code == 409
    assert response.json()["errors"] == {"name": ["a template with this name exists"]}


def test_list_filters_by_channel_and_hides_archived(
    marketer_api, template, django_assert_num_queries
):
    sms = post(
        marketer_api, URL, {"name": "Code", "channel": "sms", "content": {"body": "1234"}}
    ).json()

    with django_assert_num_queries(1):  # the page (the key is cached by now)
        everything = marketer_api.get(URL).json()["results"]
    emails = marketer_api.get(URL, {"channel": "email"}).json()["results"]

    assert [(t["id"], t["current_version"]) for t in everything] == [
        (sms["id"], 1),
        (template["id"], 1),
    ]
    assert [t["id"] for t in emails] == [template["id"]]
    assert marketer_api.get(URL, {"channel": "fax"}).status_code == 400


def test_delete_removes_an_unused_template(marketer_api, template, workspace):
    response = marketer_api.delete(f"{URL}/{template['id']}")

    assert response.status_code == 204
    with workspace_scope(workspace.id):
        assert Template.objects.count() == TemplateVersion.objects.count() == 0


def test_delete_archives_a_template_messages_used(marketer_api, template, workspace, ana):
    with workspace_scope(workspace.id):
        version = TemplateVersion.objects.get(template_id=template["id"])
        Message.objects.create(
            workspace=workspace,
            customer=ana,
            channel="email",
            kind="marketing",
            dedupe_key="test:1",
            template_id=template["id"],
            template_version=version,
        )

    response = marketer_api.delete(f"{URL}/{template['id']}")
    detail = marketer_api.get(f"{URL}/{template['id']}").json()
    listed = marketer_api.get(URL).json()["results"]
    listed_archived = marketer_api.get(URL, {"archived": "true"}).json()["results"]
    edit = patch(marketer_api, f"{URL}/{template['id']}", {"content": EMAIL})
    restored = patch(marketer_api, f"{URL}/{template['id']}", {"is_archived": False})

    assert response.status_code == 204
    assert detail["is_archived"] is True
    assert listed == []
    assert [t["id"] for t in listed_archived] == [template["id"]]
    assert edit.status_code == 409
    assert restored.json()["is_archived"] is False
    assert [number for number, _ in stored_versions(workspace, template["id"])] == [1]


def test_preview_renders_for_a_customer_and_a_sample_event(marketer_api, template, ana):
    response = post(
        marketer_api,
        f"{URL}/{template['id']}/preview",
        {"customer_id": ana.id, "event": {"product": "mug"}},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["channel"], body["version"], body["locale"]) == ("email", 1, "")
    assert body["fields"]["subject"] == "Hola Ana"
    assert body["fields"]["html"] == "<html><head></head><body><p>Hola Ana, mug</p></body></html>"
    assert body["fields"]["text"] == "Hola Ana, mug"


def test_preview_of_a_locale_and_an_old_version(marketer_api, template, ana):
    url = f"{URL}/{template['id']}"
    patch(
        marketer_api,
        url,
        {"content": EMAIL | {"subject": "v2"}, "locales": {"pt": {"subject": "Olá"}}},
    )

    old = post(marketer_api, f"{url}/preview", {"customer_id": ana.id, "version": 1}).json()
    portuguese = post(
        marketer_api, f"{url}/preview", {"customer_id": ana.id, "locale": "pt-BR"}
    ).json()

    assert (old["version"], old["fields"]["subject"]) == (1, "Hola Ana")
    assert (portuguese["version"], portuguese["locale"], portuguese["fields"]["subject"]) == (
        2,
        "pt",
        "Olá",
    )


def test_preview_that_cannot_render_is_a_422_with_the_reason(marketer_api, ana):
    created = post(
        marketer_api, URL, {"name": "Bad", "channel": "sms", "content": {"body": "{{ 1 / 0 }}"}}
    ).json()

    response = post(marketer_api, f"{URL}/{created['id']}/preview", {"customer_id": ana.id})

    assert response.status_code == 422
    assert response.json() == {
        "detail": "body, line 1: the template divides by zero",
        "code": "render_failed",
        "field": "body",
    }


def test_preview_of_another_workspaces_customer_is_a_400(marketer_api, template, other_workspace):
    with workspace_scope(other_workspace.id):
        foreign = CustomerFactory(workspace=other_workspace)

    response = post(marketer_api, f"{URL}/{template['id']}/preview", {"customer_id": foreign.id})

    assert response.status_code == 400
    assert response.json()["errors"] == {"customer_id": ["no such customer in this workspace"]}


def test_another_workspaces_template_is_a_404(marketer_api, other_api, template, workspace):
    url = f"{URL}/{template['id']}"
    answers = [
        other_api.get(url),
        patch(other_api, url, {"name": "X"}),
        other_api.delete(url),
        other_api.get(f"{url}/versions"),
        other_api.get(f"{url}/versions/1"),
        post(other_api, f"{url}/preview", {"customer_id": 1}),
    ]

    assert [answer.status_code for answer in answers] == [404] * 6
    assert marketer_api.get(url).json()["name"] == "Welcome"


def test_a_viewer_reads_but_does_not_write(workspace, template):
    viewer = bearer_client(mint_secret_key(workspace, role=Role.VIEWER))

    assert viewer.get(f"{URL}/{template['id']}").status_code == 200
    assert patch(viewer, f"{URL}/{template['id']}", {"name": "X"}).status_code == 403
    assert (
        post(viewer, URL, {"name": "Y", "channel": "sms", "content": {"body": "x"}}).status_code
        == 403
    )
    with workspace_scope(workspace.id):  # nothing renamed or made
        assert list(Template.objects.values_list("name", flat=True)) == [template["name"]]
