"""The SSTI corpus: known Jinja2 sandbox escapes and resource attacks. Each is refused
(TemplateRenderError with its reason) or renders harmlessly (the exact output is asserted),
and no output holds a setting, an environment value or an object's repr."""

import os

import pytest
from django.conf import settings

from masivo.tenancy.models import Workspace
from messaging.models import Template, TemplateVersion
from messaging.templating import TemplateRenderError, render_version
from profiles.models import Customer

pytestmark = pytest.mark.django_db

NOT_AVAILABLE = "is not available in templates"

REFUSED = {
    # str.format and its indirect forms (CVE-2016-10745, CVE-2019-10906, CVE-2024-56326,
    # CVE-2025-27516).
    '{{ "{0.__class__}".format(customer) }}': "'format' " + NOT_AVAILABLE,
    '{{ "{0}".format_map({"0": customer}) }}': "'format_map' " + NOT_AVAILABLE,
    '{{ "{x.__class__}"|attr("format")(x=1) }}': "'format' " + NOT_AVAILABLE,
    '{{ ("a"|attr("format"))("{0.__class__}", 1) }}': "'format' " + NOT_AVAILABLE,
    '{% set f = "".format %}{{ f("{0.__init__.__globals__}", cycler) }}': "'format' "
    + NOT_AVAILABLE,
    '{{ ""["format"] }}': "'format' " + NOT_AVAILABLE,
    # class walks to subclasses (file, Popen...)
    '{{ "".__class__.__mro__[1].__subclasses__() }}': "'__class__' " + NOT_AVAILABLE,
    "{{ ().__class__.__base__.__subclasses__() }}": "'__class__' " + NOT_AVAILABLE,
    '{{ [].__class__.__base__.__subclasses__()[40]("/etc/passwd").read() }}': "'__class__' "
    + NOT_AVAILABLE,
    "{{ customer.__class__ }}": "'__class__' " + NOT_AVAILABLE,
    '{{ customer["__class__"] }}': "'__class__' " + NOT_AVAILABLE,
    '{{ customer|attr("__class__") }}': "'__class__' " + NOT_AVAILABLE,
    "{{ dict.__class__ }}": "'__class__' " + NOT_AVAILABLE,
    "{{ customer.first_name.__len__() }}": "'__len__' " + NOT_AVAILABLE,
    # globals of the helpers Jinja ships
    "{{ range.__globals__ }}": "'__globals__' " + NOT_AVAILABLE,
    '{{ cycler.__init__.__globals__.os.popen("id").read() }}': "'__init__' " + NOT_AVAILABLE,
    "{{ joiner.__init__.__globals__.os }}": "'__init__' " + NOT_AVAILABLE,
    "{{ namespace.__init__.__globals__.os.environ }}": "'__init__' " + NOT_AVAILABLE,
    "{{ cycler(1, 2).__class__ }}": "'__class__' " + NOT_AVAILABLE,
    '{{ lipsum.__globals__["os"].popen("id").read() }}': "'lipsum' is undefined",
    "{{ lipsum(10**6) }}": "'lipsum' is undefined",
    "{{ config.items() }}": "'config' is undefined",
    # the template's own internals
    "{{ self.__dict__ }}": "'__dict__' " + NOT_AVAILABLE,
    "{{ self._TemplateReference__context.environment }}": "'_TemplateReference__context' "
    + NOT_AVAILABLE,
    "{% for x in [1] %}{{ loop.__class__ }}{% endfor %}": "'__class__' " + NOT_AVAILABLE,
    # mutation and other templates
    "{{ customer.traits.update({'a': 1}) }}": "'update' " + NOT_AVAILABLE,
    "{{ [1, 2].append(3) }}": "'append' " + NOT_AVAILABLE,
    '{% include "/etc/passwd" %}': "cannot include, import or extend other templates",
    '{% import "os" as os %}': "cannot include, import or extend other templates",
    '{% extends "base.html" %}': "cannot include, import or extend other templates",
    "{{ customer.traits|pprint }}": "No filter named 'pprint'",
    # resources
    "{{ range(10**9)|list|length }}": "range() of more than 10,000 numbers is not allowed",
    "{% for i in range(10**9) %}{% endfor %}": "range() of more than 10,000 numbers",
    '{{ "a" * 10**9 }}': "a text would be longer than 256 KB",
    '{{ ["a"] * 10**9 }}': "a text would be longer than 256 KB",
    "{{ 10**10**10 }}": "a number raised to a power that is too large",
    "{{ 99999999999999999999 * 99999999999999999999 * 99999999999999999999 * 10**19 }}": (
        "a multiplication of numbers that are too large"
    ),
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}": "calls nest too deeply",
    '{% set s = "x" * 200000 %}{% set s = s ~ s %}{{ s|length }}': "a text would be longer",
    '{{ "x"|center(10**9) }}': "center: a width over 1,000 is not allowed",
    '{{ "x"|indent(10**9) }}': "indent: a width over 100 is not allowed",
    '{{ "x".ljust(10**9) }}': "'ljust' " + NOT_AVAILABLE,
    '{{ "%0999999999d"|format(1) }}': "a format width over 100 is not allowed",
    '{{ "%0999999999d" % 1 }}': "a format width over 100 is not allowed",
    '{{ ("x" * 200000)|replace("x", "yyyyyyyy") }}': "a text would be longer than 256 KB",
    '{{ range(10000)|join("x" * 200000) }}': "a text would be longer than 256 KB",
    '{{ "x"|wordwrap(1, wrapstring="y" * 100) }}': "wordwrap: a wrapstring over 10",
    "{{ [1, 2, 3]|slice(10**9)|list }}": "No filter named 'slice'",
}

HARMLESS = {
    # names other frameworks put in the context are simply missing here
    "{{ config }}": "",
    "{{ request.environ }}": "",
    "{{ request.application.__globals__.__builtins__ }}": "",
    "{{ url_for.__globals__.os.environ }}": "",
    "{{ get_flashed_messages.__globals__ }}": "",
    "{{ settings.SECRET_KEY }}": "",
    "{{ customer.consent }}": "",
    "{{ self }}": "<TemplateReference None>",
    "{{ loop }}{{ caller }}": "",
    "{{ customer.first_name.upper() }}": "ANA",
    "{{ customer.traits|tojson }}": '{"plan": "gold"}',
    '{{ "%s"|format(customer.traits) }}': "{'plan': 'gold'}",
    "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}"
    "{{ ns.n }}": "3",
}


def render(body: str) -> str:
    customer = Customer(
        first_name="Ana",
        traits={"plan": "gold"},
        consent={"email_marketing": {"status": "granted"}},
    )
    version = TemplateVersion(template=Template(channel="sms"), number=1, content={"body": body})
    workspace = Workspace(id=1, name="Acme", timezone="UTC")
    return render_version(version, customer=customer, workspace=workspace).fields["body"]


@pytest.mark.parametrize(("payload", "reason"), REFUSED.items(), ids=range(len(REFUSED)))
def test_a_sandbox_escape_or_resource_attack_is_refused_with_its_reason(payload, reason):
    with pytest.raises(TemplateRenderError) as raised:
        render(payload)

    assert raised.value.reason.startswith("body")
    assert reason in raised.value.reason, raised.value.reason


@pytest.mark.parametrize(("payload", "output"), HARMLESS.items(), ids=range(len(HARMLESS)))
def test_what_renders_renders_harmlessly(payload, output):
    assert render(payload) == output


def test_the_deep_exponential_macro_stops_at_the_time_limit():
    payload = (
        "{% macro f(n) %}{% if n < 30 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}"
        "{{ f(0) }}"
    )

    with pytest.raises(TemplateRenderError) as raised:
        render(payload)

    assert raised.value.reason == "body, line 1: rendering took longer than 1 s"


@pytest.mark.parametrize("payload", [*REFUSED, *HARMLESS])
def test_no_payload_reaches_settings_or_the_environment(payload):
    secrets = [settings.SECRET_KEY, *(value for value in os.environ.values() if len(value) > 8)]
    try:
        output = render(payload)
    except TemplateRenderError as error:
        output = error.reason

    assert [secret for secret in secrets if secret in output] == []
    assert "<function" not in output and "<class" not in output and "object at 0x" not in output
