"""The customers list (search, filters, cursor paging) and the profile page (consent, timeline)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.utils.html import escape

from masivo.tenancy.context import workspace_scope
from masivo.ui.keyset import Cursor
from profiles.models import ConsentChange, Customer, Device, Event, Identity, ProfileSettings
from profiles.views import customers as customer_views
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HTMX = {"HTTP_HX_REQUEST": "true"}


def list_url(workspace, query: str = "") -> str:
    return f"/w/{workspace.id}/customers/{query}"


def profile_url(workspace, customer, suffix: str = "") -> str:
    return f"/w/{workspace.id}/customers/{customer.id}/{suffix}"


def make_customer(workspace, **fields) -> Customer:
    with workspace_scope(workspace.id):
        return CustomerFactory(workspace=workspace, **fields)


def listed(response) -> list[str]:
    """The external ids of the rows on the page, in order."""
    return [customer.external_id for customer in response.context["page"].rows]


def stored(workspace, customer) -> dict:
    with workspace_scope(workspace.id):
        return model_to_dict(Customer.objects.get(id=customer.id))


def consent_history(workspace) -> list[tuple]:
    with workspace_scope(workspace.id):
        return list(
            ConsentChange.objects.order_by("id").values_list(
                "customer_id", "purpose", "status", "source", "changed_at"
            )
        )


@pytest.fixture
def five(workspace) -> list[Customer]:
    """c1..c5, updated an hour apart (c5 newest); c2 and c3 share a time, so ids break the tie."""
    times = [NOW - timedelta(hours=4), NOW - timedelta(hours=2), NOW - timedelta(hours=2)]
    times += [NOW - timedelta(hours=1), NOW]
    return [
        make_customer(workspace, external_id=f"c{number}", updated_at=updated_at)
        for number, updated_at in enumerate(times, start=1)
    ]


# -- the list --------------------------------------------------------------------------------


def test_the_list_shows_the_columns_newest_updated_first(viewer_client, workspace):
    make_customer(workspace, external_id="old", updated_at=NOW - timedelta(days=3))
    make_customer(
        workspace, external_id="u-42", email="ana@example.com", first_name="Ana",
        last_name="López", country="MX", purchase_count=3, updated_at=NOW,
        last_seen_at=datetime(2026, 11, 19, 9, 30, tzinfo=UTC),
    )  # fmt: skip

    response = viewer_client.get(list_url(workspace))

    assert response.status_code == 200
    assert listed(response) == ["u-42", "old"]
    content = response.content.decode()
    ana = response.context["page"].rows[0]
    assert f'<a class="strong" href="/w/{workspace.id}/customers/{ana.id}/">Ana López</a>' in (
        content
    )
    assert "<td>ana@example.com</td>" in content
    assert "<td><code>u-42</code></td>" in content
    assert "<td>MX</td>" in content
    assert 'title="Nov 19, 2026 09:30"' in content
    assert '<td class="cell-number">3</td>' in content
    assert "Next page" not in content
    assert f'class="nav-link is-active" href="/w/{workspace.id}/customers/"' in content


def test_paging_follows_the_cursor_without_repeating_or_skipping(
    viewer_client, workspace, five, monkeypatch
):
    monkeypatch.setattr(customer_views, "CUSTOMERS_PAGE_SIZE", 2)

    first = viewer_client.get(list_url(workspace))
    second = viewer_client.get(first.context["next_url"])
    third = viewer_client.get(second.context["next_url"])

    assert (listed(first), listed(second), listed(third)) == (
        ["c5", "c4"],
        ["c3", "c2"],
        ["c1"],
    )
    assert first.context["next_url"] == list_url(
        workspace, "?after=" + Cursor(at=five[3].updated_at, id=five[3].id).encode()
    )
    assert third.context["next_url"] is None
    assert "First page" in third.content.decode()
    assert "First page" not in first.content.decode()


def test_the_next_page_keeps_the_filters(viewer_client, workspace, five, monkeypatch):
    monkeypatch.setattr(customer_views, "CUSTOMERS_PAGE_SIZE", 1)
    make_customer(workspace, external_id="mx", country="MX", updated_at=NOW - timedelta(days=9))
    make_customer(workspace, external_id="mx2", country="MX", updated_at=NOW - timedelta(days=8))

    first = viewer_client.get(list_url(workspace, "?country=mx&status=active"))
    second = viewer_client.get(first.context["next_url"])

    assert (listed(first), listed(second)) == (["mx2"], ["mx"])
    assert first.context["next_url"].startswith(list_url(workspace, "?country=mx&status=active&"))


def test_a_mangled_cursor_is_a_bad_request(viewer_client, workspace, five):
    assert viewer_client.get(list_url(workspace, "?after=not-a-cursor")).status_code == 400


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("ana.l", ["email"]),
        ("ANA.L", ["email"]),
        ("gutiér", ["last name"]),
        ("beat", ["first name"]),
        ("+52551", ["phone"]),
        ("crm-77", ["crm-77"]),
        ("crm-7", []),
        ("  crm-77  ", ["crm-77"]),
        ("nobody", []),
    ],
)
def test_search_by_prefix_or_exact_external_id(viewer_client, workspace, search, expected):
    make_customer(workspace, external_id="email", email="ana.lopez@example.com", updated_at=NOW)
    make_customer(workspace, external_id="last name", last_name="Gutiérrez", updated_at=NOW)
    make_customer(workspace, external_id="first name", first_name="Beatriz", updated_at=NOW)
    make_customer(workspace, external_id="phone", phone="+525512345678", updated_at=NOW)
    make_customer(workspace, external_id="crm-77", updated_at=NOW)

    response = viewer_client.get(list_url(workspace), {"search": search})

    assert sorted(listed(response)) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "inactive"}, ["inactive"]),
        ({"status": "active"}, ["anonymous", "recent", "mx"]),
        ({"country": "mx"}, ["mx"]),
        ({"identity": "anonymous"}, ["anonymous"]),
        ({"identity": "known"}, ["recent", "mx", "inactive"]),
        ({"updated_since": "2026-11-20"}, ["anonymous", "recent"]),
        ({"updated_since": "2026-11-20", "identity": "known"}, ["recent"]),
    ],
)
def test_filters(viewer_client, workspace, query, expected):
    make_customer(
        workspace, external_id="inactive", status="inactive", updated_at=NOW - timedelta(days=3)
    )
    make_customer(workspace, external_id="mx", country="MX", updated_at=NOW - timedelta(days=2))
    make_customer(workspace, external_id="recent", updated_at=NOW - timedelta(hours=11))
    make_customer(workspace, external_id="anonymous", email=None, is_anonymous=True, updated_at=NOW)

    response = viewer_client.get(list_url(workspace), query)

    assert listed(response) == expected


def test_updated_since_is_a_day_in_the_workspace_time_zone(viewer_client, workspace):
    workspace.timezone = "America/Mexico_City"  # UTC-6
    workspace.save()
    make_customer(workspace, external_id="late", updated_at=datetime(2026, 11, 20, 5, tzinfo=UTC))
    make_customer(workspace, external_id="in", updated_at=datetime(2026, 11, 20, 7, tzinfo=UTC))

    response = viewer_client.get(list_url(workspace), {"updated_since": "2026-11-20"})

    assert listed(response) == ["in"]


def test_a_bad_filter_is_explained_and_lists_nothing(viewer_client, workspace, five):
    response = viewer_client.get(list_url(workspace), {"country": "Mexico"})

    assert response.status_code == 200
    assert response.context["page"] is None
    content = response.content.decode()
    assert '<p class="field-error">Country: Two letters, like MX.</p>' in content
    assert "Fix the filters above to see customers." in content


def test_no_match_and_the_empty_workspace_differ(viewer_client, workspace):
    empty = viewer_client.get(list_url(workspace)).content.decode()
    assert "Customers will appear here once events or profiles arrive" in empty
    assert 'role="search"' not in empty

    make_customer(workspace, external_id="someone")
    no_match = viewer_client.get(list_url(workspace), {"search": "zzz"}).content.decode()
    assert "No customers match these filters." in no_match
    assert 'role="search"' in no_match


def test_htmx_search_gets_only_the_results(viewer_client, workspace, five):
    response = viewer_client.get(list_url(workspace), {"search": "c3"}, **HTMX)

    content = response.content.decode()
    assert content.startswith('<section id="customer-results"')
    assert "<html" not in content
    assert listed(response) == ["c3"]
    assert "HX-Request" in response["Vary"]


def test_the_search_form_works_with_and_without_htmx(viewer_client, workspace, five):
    content = viewer_client.get(list_url(workspace)).content.decode()

    url = list_url(workspace)
    assert (
        f'<form method="get" action="{url}" class="card filter-bar" role="search" '
        f'hx-get="{url}" hx-trigger="submit, input delay:300ms" hx-target="#customer-results" '
        'hx-swap="outerHTML" hx-replace-url="true" hx-sync="this:replace">'
    ) in content


def test_the_list_costs_one_query_for_the_customers_and_none_to_count_them(
    viewer_client, workspace, five, django_assert_num_queries
):
    # session, user, workspace, membership, the page of customers, the workspace switcher
    with django_assert_num_queries(6):
        viewer_client.get(list_url(workspace))


def test_the_list_of_another_workspace_is_a_404(outsider_client, workspace, five):
    assert outsider_client.get(list_url(workspace)).status_code == 404


def test_another_workspaces_customers_never_show(member_client, workspace, other_workspace):
    make_customer(workspace, external_id="mine")
    make_customer(other_workspace, external_id="theirs", email="theirs@example.com")

    assert listed(member_client.get(list_url(workspace))) == ["mine"]
    assert listed(member_client.get(list_url(workspace), {"search": "theirs"})) == []


# -- the profile page ------------------------------------------------------------------------


@pytest.fixture
def ana(workspace) -> Customer:
    customer = make_customer(
        workspace, external_id="u-1", email="ana@example.com", phone="+525512345678",
        first_name="Ana", last_name="López", country="MX", city="Puebla", tier="gold",
        traits={"plan": "pro", "pets": ["cat"]}, tags={"vip": True, "segment": "b2b"},
        consent={
            "email_marketing": {
                "status": "granted", "at": "2026-11-01T10:00:00+00:00", "source": "signup form",
            },
            "advertising": {"status": "denied", "at": "2026-11-02T11:00:00+00:00", "source": "api"},
        },
        purchase_count=4, purchase_total=Decimal("1234.50"), purchases_30d_count=2,
        purchases_30d_total=Decimal("99.90"), purchases_month_count=1,
        purchases_month_total=Decimal("49.95"), last_purchase_at=NOW,
        metrics_updated_at=NOW, created_at=NOW - timedelta(days=30), updated_at=NOW,
    )  # fmt: skip
    with workspace_scope(workspace.id):
        Identity.objects.create(
            workspace=workspace, customer=customer, kind="anonymous_id", value="anon-7"
        )
        Identity.objects.create(workspace=workspace, customer=customer, kind="alias", value="old-1")
        Device.objects.create(
            workspace=workspace, customer=customer, token="fcm-token-abcdefghijklmnop",
            platform="android", model="Pixel 8", os_version="15",
            expires_at=datetime(2099, 1, 1, tzinfo=UTC),
        )  # fmt: skip
    return customer


def add_events(workspace, customer, count: int) -> None:
    """Events e1..eN, one a minute, eN newest."""
    with workspace_scope(workspace.id):
        Event.objects.bulk_create(
            Event(
                workspace=workspace, customer=customer, name=f"e{number}",
                properties={"n": number}, occurred_at=NOW - timedelta(minutes=count - number),
                message_id=f"m-{customer.id}-{number}", source="api",
            )
            for number in range(1, count + 1)
        )  # fmt: skip


def timeline_names(response) -> list[str]:
    return [event.name for event, _line, _json in response.context["events"]]


def test_the_profile_shows_identity_fields_traits_tags_devices_and_metrics(
    viewer_client, workspace, ana
):
    response = viewer_client.get(profile_url(workspace, ana))

    assert response.status_code == 200
    content = response.content.decode()
    assert "<title>Ana López · Masivo</title>" in content
    assert "<dt>External id</dt><dd><code>u-1</code></dd>" in content
    assert "<dt>Phone</dt><dd>+525512345678</dd>" in content
    assert "<dt>Anonymous</dt><dd>No</dd>" in content
    assert '<span class="badge badge-info">Anonymous id</span> <code>anon-7</code>' in content
    assert (
        '<span class="badge badge-purple">Alias (a former user id)</span> <code>old-1</code>'
        in content
    )
    assert "<dt>City</dt><dd>Puebla</dd>" in content
    assert "<dt>Tier</dt><dd>gold</dd>" in content
    assert escape('{\n  "pets": [\n    "cat"\n  ],\n  "plan": "pro"\n}') in content
    assert '<span class="tag-key">vip</span></li>' in content
    assert '<span class="tag-key">segment</span><span class="tag-value">b2b</span>' in content
    assert "<td>Pixel 8</td>" in content
    assert "<code>fcm-token-abcde…</code>" in content
    assert '<span class="stat-value">4</span><span class="stat-sub">1,234.50 total</span>' in (
        content
    )
    assert '<span class="stat-value">2</span><span class="stat-sub">99.90 total</span>' in content
    assert '<span class="stat-value">1</span><span class="stat-sub">49.95 total</span>' in content
    assert "<dt>Last purchase</dt><dd>Nov 20, 2026 12:00</dd>" in content


def test_consent_rows_show_status_time_source_and_may_contact(viewer_client, workspace, ana):
    response = viewer_client.get(profile_url(workspace, ana))

    rows = [
        (row["label"], row["status"], row["at"], row["source"], row["may_contact"])
        for row in response.context["consent_rows"]
    ]
    assert rows == [
        ("Email marketing", "granted", datetime(2026, 11, 1, 10, tzinfo=UTC), "signup form", True),
        ("Push notifications", None, None, None, False),
        ("WhatsApp marketing", None, None, None, False),
        ("SMS marketing", None, None, None, False),
        ("Advertising audiences", "denied", datetime(2026, 11, 2, 11, tzinfo=UTC), "api", False),
        ("Behavioral campaigns", None, None, None, False),
        ("Link tracking", None, None, None, False),
    ]
    content = response.content.decode()
    assert "Not recorded means denied (opt-in)." in content
    assert '<span class="source">signup form</span>' in content


def test_under_opt_out_not_recorded_may_contact(viewer_client, workspace, ana):
    with workspace_scope(workspace.id):
        ProfileSettings.objects.create(workspace=workspace, consent_regime="opt_out")

    response = viewer_client.get(profile_url(workspace, ana))

    may = [row["may_contact"] for row in response.context["consent_rows"]]
    assert may == [True, True, True, True, False, True, True]


def test_an_unreadable_consent_time_shows_as_unknown(viewer_client, workspace):
    customer = make_customer(
        workspace, consent={"sms_marketing": {"status": "granted", "at": "x", "source": "api"}}
    )

    response = viewer_client.get(profile_url(workspace, customer))

    assert response.status_code == 200
    sms = response.context["consent_rows"][3]
    assert (sms["label"], sms["status"], sms["at"], sms["source"]) == (
        "SMS marketing",
        "granted",
        None,
        "api",
    )


def test_the_timeline_shows_the_newest_page_and_a_revealed_sentinel(
    viewer_client, workspace, ana, monkeypatch
):
    monkeypatch.setattr(customer_views, "EVENTS_PAGE_SIZE", 3)
    add_events(workspace, ana, 5)

    response = viewer_client.get(profile_url(workspace, ana))

    assert timeline_names(response) == ["e5", "e4", "e3"]
    cursor = response.context["next_events_cursor"]
    with workspace_scope(workspace.id):
        e3 = Event.objects.get(name="e3")
    assert cursor == Cursor(at=e3.occurred_at, id=e3.id).encode()
    assert (
        f'<li class="timeline-more" hx-get="{profile_url(workspace, ana, "events/")}'
        f'?before={cursor}" hx-trigger="revealed" hx-swap="outerHTML">'
    ) in response.content.decode()


def test_the_next_timeline_page_continues_by_cursor(viewer_client, workspace, ana, monkeypatch):
    monkeypatch.setattr(customer_views, "EVENTS_PAGE_SIZE", 2)
    add_events(workspace, ana, 5)
    first = viewer_client.get(profile_url(workspace, ana))

    second = viewer_client.get(
        profile_url(workspace, ana, "events/"), {"before": first.context["next_events_cursor"]},
        **HTMX,
    )  # fmt: skip
    third = viewer_client.get(
        profile_url(workspace, ana, "events/"), {"before": second.context["next_events_cursor"]},
        **HTMX,
    )  # fmt: skip

    assert (timeline_names(second), timeline_names(third)) == (["e3", "e2"], ["e1"])
    assert second.content.decode().lstrip().startswith('<li class="timeline-item">')
    assert third.context["next_events_cursor"] is None
    assert "timeline-more" not in third.content.decode()


def test_without_htmx_the_older_events_link_opens_the_profile_there(
    viewer_client, workspace, ana, monkeypatch
):
    monkeypatch.setattr(customer_views, "EVENTS_PAGE_SIZE", 2)
    add_events(workspace, ana, 3)
    cursor = viewer_client.get(profile_url(workspace, ana)).context["next_events_cursor"]

    redirected = viewer_client.get(profile_url(workspace, ana, "events/"), {"before": cursor})
    continued = viewer_client.get(profile_url(workspace, ana), {"before": cursor})

    assert redirected.status_code == 302
    assert redirected["Location"] == f"{profile_url(workspace, ana)}?before={cursor}#timeline"
    assert timeline_names(continued) == ["e1"]


def test_events_of_other_customers_stay_off_the_timeline(viewer_client, workspace, ana):
    add_events(workspace, make_customer(workspace), 2)
    add_events(workspace, ana, 1)

    assert timeline_names(viewer_client.get(profile_url(workspace, ana))) == ["e1"]


def test_the_profile_query_count_is_fixed(viewer_client, workspace, ana, django_assert_num_queries):
    add_events(workspace, ana, 30)
    with workspace_scope(workspace.id):
        ProfileSettings.objects.create(workspace=workspace)
    # session, user, workspace, membership, customer, settings, consent history, audiences,
    # journeys, messages, events, the workspace switcher, identities, devices
    with django_assert_num_queries(14):
        viewer_client.get(profile_url(workspace, ana))


def test_another_workspaces_customer_is_a_404_like_a_missing_one(
    member_client, workspace, other_workspace
):
    theirs = make_customer(other_workspace)

    for suffix in ["", "events/"]:
        assert member_client.get(profile_url(workspace, theirs, suffix)).status_code == 404
    assert member_client.get(f"/w/{workspace.id}/customers/2000000000/").status_code == 404


def test_an_outsider_gets_a_404_and_changes_nothing(outsider_client, workspace, ana):
    before = stored(workspace, ana)

    assert outsider_client.get(profile_url(workspace, ana)).status_code == 404
    response = outsider_client.post(profile_url(workspace, ana, "consent/"), {"sms_marketing": ""})

    assert response.status_code == 404
    assert stored(workspace, ana) == before
    assert consent_history(workspace) == []


# -- consent edits ---------------------------------------------------------------------------


def consent_post(**statuses) -> dict:
    """The form as the page sends it: each purpose's select and the status the page showed."""
    shown = {"email_marketing": "granted", "advertising": "denied"}
    purposes = [
        "email_marketing", "push_notifications", "whatsapp_marketing", "sms_marketing",
        "advertising", "behavioral_campaigns", "link_tracking",
    ]  # fmt: skip
    data = {}
    for purpose in purposes:
        data[f"was_{purpose}"] = shown.get(purpose, "")
        data[purpose] = statuses.get(purpose, shown.get(purpose, ""))
    return data


def test_a_marketer_records_consent_with_a_history_row(member_client, member, workspace, ana):
    response = member_client.post(
        profile_url(workspace, ana, "consent/"),
        consent_post(sms_marketing="granted", email_marketing="denied", advertising=""),
    )

    assert response.status_code == 302
    assert response["Location"] == profile_url(workspace, ana)
    consent = stored(workspace, ana)["consent"]
    source = f"dashboard:{member.user.email}"
    changed_at = consent["sms_marketing"]["at"]
    assert consent == {
        "email_marketing": {"status": "denied", "at": changed_at, "source": source},
        "sms_marketing": {"status": "granted", "at": changed_at, "source": source},
    }
    at = datetime.fromisoformat(changed_at)
    assert consent_history(workspace) == [
        (ana.id, "email_marketing", "denied", source, at),
        (ana.id, "sms_marketing", "granted", source, at),
        (ana.id, "advertising", None, source, at),
    ]
    page = member_client.get(response["Location"]).content.decode()
    assert (
        "Consent saved: Email marketing denied, SMS marketing granted, "
        "Advertising audiences not recorded."
    ) in page
    assert f'<span class="source">{source}</span>' in page


def test_a_stale_page_only_changes_the_purposes_the_user_touched(member_client, workspace, ana):
    # Since the page was loaded, someone granted push through the API.
    with workspace_scope(workspace.id):
        ana.consent["push_notifications"] = {"status": "granted", "at": "x", "source": "api"}
        ana.save()

    member_client.post(
        profile_url(workspace, ana, "consent/"), consent_post(link_tracking="denied")
    )

    consent = stored(workspace, ana)["consent"]
    assert consent["push_notifications"] == {"status": "granted", "at": "x", "source": "api"}
    assert consent["link_tracking"]["status"] == "denied"
    assert [row[1:3] for row in consent_history(workspace)] == [("link_tracking", "denied")]


def test_saving_an_unchanged_form_records_nothing(member_client, workspace, ana):
    before = stored(workspace, ana)

    response = member_client.post(profile_url(workspace, ana, "consent/"), consent_post())

    assert response.status_code == 302
    assert stored(workspace, ana) == before
    assert consent_history(workspace) == []
    assert "Nothing changed." in member_client.get(response["Location"]).content.decode()


def test_an_unknown_status_is_refused_and_changes_nothing(member_client, workspace, ana):
    before = stored(workspace, ana)

    response = member_client.post(
        profile_url(workspace, ana, "consent/"), consent_post(sms_marketing="maybe")
    )

    assert response.status_code == 400
    assert "Select a valid choice. maybe is not one of the available choices." in (
        response.content.decode()
    )
    assert stored(workspace, ana) == before
    assert consent_history(workspace) == []


def test_marketers_get_the_consent_form(member_client, workspace, ana):
    content = member_client.get(profile_url(workspace, ana)).content.decode()

    assert f'<form method="post" action="{profile_url(workspace, ana, "consent/")}"' in content
    assert '<select name="sms_marketing" id="id_sms_marketing">' in content
    assert '<input type="hidden" name="was_email_marketing" value="granted"' in content
    assert '<button type="submit" class="btn btn-primary">Save consent</button>' in content


def test_viewers_see_no_edit_controls(viewer_client, workspace, ana):
    content = viewer_client.get(profile_url(workspace, ana)).content.decode()

    assert "<select" not in content
    assert "Save consent" not in content
    assert '<form method="post" action="/w/' not in content
    assert '<span class="badge badge-success">Granted</span>' in content


def test_a_viewer_post_is_refused_and_changes_nothing(viewer_client, workspace, ana):
    before = stored(workspace, ana)

    response = viewer_client.post(
        profile_url(workspace, ana, "consent/"), consent_post(sms_marketing="granted")
    )

    assert response.status_code == 403
    assert stored(workspace, ana) == before
    assert consent_history(workspace) == []


def test_consent_only_takes_posts(member_client, workspace, ana):
    assert member_client.get(profile_url(workspace, ana, "consent/")).status_code == 405


def test_customer_pages_keep_the_strict_content_security_policy(member_client, workspace, ana):
    add_events(workspace, ana, 2)
    for url in [list_url(workspace), profile_url(workspace, ana)]:
        content = member_client.get(url).content.decode()
        assert "<script>" not in content
        assert " style=" not in content
