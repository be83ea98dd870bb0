"""The SSRF guard: refused at save (url_check) and at send (outbound_session), the allow-list,
redirects returned unfollowed, the pinned connection keeping the name in the Host header."""

import ipaddress
import re
import socket
import threading

import pytest
import requests

from masivo.outbound import UnsafeURL, address_refusal, outbound_session, url_check
from tests.fakes.base import Answer, FakeServer


@pytest.fixture(scope="module")
def receiver():
    fake = FakeServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(receiver):
    receiver.reset()
    receiver.answer_when(lambda request: True, Answer(200, {"ok": True}))
    return receiver


@pytest.fixture
def no_allowlist(settings):
    settings.MASIVO_OUTBOUND_ALLOWLIST = []


LOOPBACK = "loopback address"
CREDENTIALS = "URLs with credentials (user:password@) are not allowed"
METADATA = "metadata.google.internal is a cloud metadata service name"

REFUSED = [
    ("http://127.0.0.1/hook", "the host 127.0.0.1 is a loopback address"),
    ("http://127.8.9.10/hook", "the host 127.8.9.10 is a loopback address"),
    ("http://[::1]:8080/hook", "the host ::1 is a loopback address"),
    ("http://10.0.0.1/hook", "the host 10.0.0.1 is a private address"),
    ("http://172.16.5.4/hook", "the host 172.16.5.4 is a private address"),
    ("http://192.168.1.1/hook", "the host 192.168.1.1 is a private address"),
    ("http://[fd00::1]/hook", "the host fd00::1 is a private address"),
    (
        "http://169.254.169.254/latest/meta-data/",
        "the host 169.254.169.254 is the cloud metadata address (link-local)",
    ),
    ("http://169.254.1.1/", "the host 169.254.1.1 is a link-local address"),
    ("http://[fe80::1]/", "the host fe80::1 is a link-local address"),
    ("http://0.0.0.0/", "the host 0.0.0.0 is the unspecified address"),
    ("http://[::]/", "the host :: is the unspecified address"),
    ("http://224.0.0.1/", "the host 224.0.0.1 is a multicast address"),
    ("http://240.0.0.1/", "the host 240.0.0.1 is a reserved address"),
    ("http://100.64.0.1/", "the host 100.64.0.1 is a shared (CGNAT) address"),
    (
        "http://[::ffff:127.0.0.1]/",
        "the host ::ffff:127.0.0.1 is an IPv4-mapped form of a loopback address",
    ),
    (
        "http://[::ffff:169.254.169.254]/",
        "the host ::ffff:169.254.169.254 is an IPv4-mapped form of the cloud metadata address"
        " (link-local)",
    ),
    ("http://2130706433/", "the host 2130706433 resolves to 127.0.0.1, which is a " + LOOPBACK),
    ("http://localhost:9/", "the host localhost resolves to 127.0.0.1, which is a " + LOOPBACK),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_url_check_refuses_addresses_that_are_not_public(no_allowlist, url, why):
    with pytest.raises(UnsafeURL) as refused:
        url_check(url)

    assert str(refused.value) == f"Refused {url!r}: {why}."


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "only http and https URLs are allowed, not ftp"),
        ("file:///etc/passwd", "only http and https URLs are allowed, not file"),
        ("gopher://example.com/", "only http and https URLs are allowed, not gopher"),
        ("example.com/hook", "only http and https URLs are allowed, not no scheme"),
        ("https://user:pass@example.com/", CREDENTIALS),
        ("https://user@example.com/", CREDENTIALS),
        ("https:///nohost", "the URL has no host"),
        ("http://metadata.google.internal/computeMetadata/v1/", METADATA),
        ("http://METADATA.google.internal./", METADATA),
        ("http://billing.corp.internal/", "billing.corp.internal is a private (.internal) name"),
    ],
)  # fmt: skip
def test_url_check_refuses_schemes_credentials_and_metadata_names(no_allowlist, url, message):
    with pytest.raises(UnsafeURL) as refused:
        url_check(url)

    assert str(refused.value) == f"Refused {url!r}: {message}."


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hook",
        "https://[2606:4700::6810:84e5]/hook",
        # No DNS here: a name that does not resolve yet is accepted, and checked at every send.
        "https://hooks.example.com/masivo",
    ],
)
def test_url_check_accepts_public_addresses_and_unresolved_names(no_allowlist, url):
    assert url_check(url) is None


def test_unsafe_url_is_a_value_error_with_the_reason(no_allowlist):
    with pytest.raises(ValueError) as refused:
        url_check("http://10.0.0.1/")

    assert isinstance(refused.value, UnsafeURL)
    assert (refused.value.url, refused.value.reason) == ("http://10.0.0.1/", "a private address")


@pytest.mark.parametrize(
    ("allowlist", "url"),
    [
        (["127.0.0.1"], "http://127.0.0.1:8080/"),
        (["127.0.0.0/8"], "http://127.3.3.3/"),
        (["127.0.0.1"], "http://localhost:8080/"),  # an allowed address, whatever the name
        (["10.1.0.0/16"], "http://10.1.2.3/"),
        (["10.1.2.3"], "http://[::ffff:10.1.2.3]/"),
        (["metadata.google.internal"], "http://metadata.google.internal/"),
        (["LOCALHOST"], "http://localhost/"),
    ],
)
def test_the_allowlist_lets_chosen_receivers_through(settings, allowlist, url):
    settings.MASIVO_OUTBOUND_ALLOWLIST = allowlist

    assert url_check(url) is None


def test_the_allowlist_does_not_widen_to_neighbours(settings):
    settings.MASIVO_OUTBOUND_ALLOWLIST = ["10.1.2.3", "hooks.local"]

    with pytest.raises(UnsafeURL, match=r"10\.1\.2\.4 is a private address"):
        url_check("http://10.1.2.4/")
    with pytest.raises(UnsafeURL, match="only http and https"):
        url_check("ftp://10.1.2.3/")


def test_address_refusal_accepts_public_addresses():
    assert address_refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert address_refusal(ipaddress.ip_address("2001:4860:4860::8888")) is None


# At send --------------------------------------------------------------------------------------


def test_a_send_reaches_an_allowed_receiver_with_timeout_and_user_agent(fake):
    response = outbound_session().post(f"{fake.url}/hook", json={"a": 1})

    assert (response.status_code, response.json()) == (200, {"ok": True})
    [request] = fake.requests
    host, port = fake.url.removeprefix("http://").split(":")
    assert (request.path, request.json) == ("/hook", {"a": 1})
    assert request.header("host") == f"{host}:{port}"
    assert request.header("user-agent") == "Masivo/1"


def test_a_send_to_a_refused_address_raises_before_connecting(fake, no_allowlist):
    with pytest.raises(UnsafeURL) as refused:
        outbound_session().post(f"{fake.url}/hook", json={"a": 1})

    assert str(refused.value) == (
        f"Refused '{fake.url}/hook': the host 127.0.0.1 is a loopback address."
    )
    assert fake.requests == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://localhost:{port}/hook", "localhost resolves to 127.0.0.1, which is a loopback"),
        ("http://[::1]:{port}/hook", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/hook", "::ffff:127.0.0.1 is an IPv4-mapped form"),
        ("http://10.0.0.1:{port}/hook", "10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata"),
        ("http://metadata.google.internal/", "metadata.google.internal is a cloud metadata"),
    ],
)
def test_refused_sends(fake, no_allowlist, url, why):
    port = fake.url.rsplit(":", 1)[1]

    with pytest.raises(UnsafeURL, match=re.escape(why)):
        outbound_session(timeout=2).get(url.format(port=port))

    assert fake.requests == []


def test_an_allowed_name_is_pinned_and_keeps_its_host_header(fake, settings):
    settings.MASIVO_OUTBOUND_ALLOWLIST = ["localhost"]
    port = fake.url.rsplit(":", 1)[1]

    response = outbound_session().get(f"http://localhost:{port}/named")

    assert response.status_code == 200
    assert fake.requests[0].header("host") == f"localhost:{port}"


def test_a_send_refuses_schemes_and_credentials(fake):
    with pytest.raises(UnsafeURL, match="credentials"):
        outbound_session().get(fake.url.replace("http://", "http://user:pw@") + "/x")
    assert fake.requests == []


def test_a_redirect_is_returned_not_followed(fake):
    fake.reset()
    fake.script(Answer(302, None, {"Location": "http://10.0.0.1/internal"}))
    fake.script(Answer(307, None, {"Location": f"{fake.url}/second"}))

    first = outbound_session().post(f"{fake.url}/hook", json={})
    second = outbound_session().get(f"{fake.url}/hook", allow_redirects=True)

    assert (first.status_code, first.headers["Location"]) == (302, "http://10.0.0.1/internal")
    assert (second.status_code, second.headers["Location"]) == (307, f"{fake.url}/second")
    assert [request.path for request in fake.requests] == ["/hook", "/hook"]


def test_the_default_timeout_applies():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    try:
        with pytest.raises(requests.Timeout):
            outbound_session(timeout=0.3).get(f"http://127.0.0.1:{silent.getsockname()[1]}/")
    finally:
        silent.close()
