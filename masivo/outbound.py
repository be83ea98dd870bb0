"""The SSRF guard: every request to a URL a user gave us (webhooks, a Braze cluster URL, base-URL
overrides) goes through here.

Two checks, the same rules:
- `url_check(url)` when the URL is saved, for a clear error on the form or the API;
- `outbound_session()` at every send: the host is resolved once, every address is checked, and
  the connection goes to the checked address (the `Host` header and TLS SNI keep the name), so a
  name that resolves to a public address at the check and to 127.0.0.1 at the connection
  (DNS rebinding) reaches nothing. Redirects are never followed (a 3xx comes back as it is) and
  a timeout always applies.

Refused: schemes other than http and https, credentials in the URL, cloud metadata names, and
any address that is loopback, private, link-local (169.254.169.254, the metadata address, is
one), unspecified, multicast, reserved, shared (CGNAT 100.64/10), another special-purpose
range, or an IPv4-mapped IPv6 address of one of these. `settings.MASIVO_OUTBOUND_ALLOWLIST`
(hostnames, IPs or CIDRs) lets chosen receivers through: on-premise ones, and the tests' fakes.

Built on requests-hardened (its `HTTPSession`: no redirects, a default timeout). Its own IP
filter is not used: it cannot honour an allow-list (only a loopback switch), checks only the
first address a name resolves to, and knows no metadata names. `_GuardedAdapter` pins the
connection the way its `IPFilterAdapter` does, with the check below.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES
from urllib3.util.connection import allowed_gai_family

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")
USER_AGENT = "Masivo/1"
# Cloud metadata services by name (they also answer on 169.254.169.254 / fd00:ec2::254, which
# the address rules refuse). `.internal` is reserved for private use (ICANN, 2024): never public.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)
PRIVATE_SUFFIXES = (".internal",)

_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")


class UnsafeURL(ValueError):
    """A URL (or the address it resolves to) that outbound requests refuse. `str()` names what
    was refused and why, for people."""

    def __init__(self, message: str, *, url: str = "", reason: str = ""):
        super().__init__(message)
        self.url = url
        self.reason = reason


# The rules ------------------------------------------------------------------------------------


def address_refusal(address: IPAddress) -> str | None:
    """Why an address may not be reached (None: it may). IPv4-mapped IPv6 addresses
    (::ffff:127.0.0.1) are judged as the IPv4 address they carry."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        reason = address_refusal(address.ipv4_mapped)
        return f"an IPv4-mapped form of {reason}" if reason else None
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address == ipaddress.IPv4Address("169.254.169.254"):
        return "the cloud metadata address (link-local)"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in _PRIVATE_NETWORKS):
        return "a private address"
    if address.version == 4 and address in _SHARED_NETWORK:
        return "a shared (CGNAT) address"
    if address.is_reserved:
        return "a reserved address"
    if any(address in network for network in EXTRA_BLOCKED_NET_RANGES):
        return "a special-purpose address"
    if address.is_private or not address.is_global:
        return "an address that is not public"
    return None


@dataclass(frozen=True)
class _Allowlist:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls) -> _Allowlist:
        hosts, networks = set(), []
        for entry in getattr(settings, "MASIVO_OUTBOUND_ALLOWLIST", None) or ():
            entry = str(entry).strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, hostname: str) -> bool:
        return hostname in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate in network
            for candidate in candidates
            for network in self.networks
            if network.version == candidate.version
        )


def is_allowlisted(hostname: str) -> bool:
    """Whether MASIVO_OUTBOUND_ALLOWLIST names this host, by name or by address (connectors
    allow plain http only for such hosts: credentials go with every request)."""
    allowlist = _Allowlist.from_settings()
    name = hostname.strip("[]").lower().rstrip(".")
    if allowlist.allows_host(name):
        return True
    try:
        return allowlist.allows_address(ipaddress.ip_address(name))
    except ValueError:
        return False


def _hostname_of(url: str) -> tuple[str, int | None, str]:
    """(hostname, port, scheme) of a URL the rules accept, else UnsafeURL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        message = f"Refused {url!r}: not a valid URL ({error})."
        raise UnsafeURL(message, url=url, reason="invalid") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeURL(
            f"Refused {url!r}: only http and https URLs are allowed, not {scheme or 'no scheme'}.",
            url=url,
            reason="scheme",
        )
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL(
            f"Refused {url!r}: URLs with credentials (user:password@) are not allowed.",
            url=url,
            reason="credentials",
        )
    hostname = (parts.hostname or "").rstrip(".")
    if not hostname:
        raise UnsafeURL(f"Refused {url!r}: the URL has no host.", url=url, reason="invalid")
    return hostname, port, scheme


def _name_refusal(hostname: str, allowlist: _Allowlist) -> str | None:
    if allowlist.allows_host(hostname):
        return None
    if hostname in METADATA_NAMES:
        return "a cloud metadata service name"
    if hostname.endswith(PRIVATE_SUFFIXES):
        return "a private (.internal) name"
    return None


def _resolve(hostname: str, port: int | None, family: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(hostname, port, family=family, type=socket.SOCK_STREAM)
    return [
        ipaddress.ip_address(info[4][0])
        for info in infos
        if info[0] in (socket.AF_INET, socket.AF_INET6)
    ]


def _check_addresses(
    url: str, hostname: str, addresses: list[IPAddress], allowlist: _Allowlist
) -> None:
    if allowlist.allows_host(hostname):
        return
    for address in addresses:
        if allowlist.allows_address(address):
            continue
        reason = address_refusal(address)
        if reason:
            shown = "is" if _is_literal(hostname) else f"resolves to {address}, which is"
            raise UnsafeURL(
                f"Refused {url!r}: the host {hostname} {shown} {reason}.", url=url, reason=reason
            )


def _is_literal(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def url_check(url: str) -> None:
    """At save time: refuse a URL outbound requests would refuse, with the reason.

    A name that does not resolve now is accepted (a receiver not yet in DNS, or a machine
    without DNS): there is nothing to reach yet, and every send checks again.
    """
    hostname, port, _ = _hostname_of(url)
    allowlist = _Allowlist.from_settings()
    reason = _name_refusal(hostname, allowlist)
    if reason:
        raise UnsafeURL(f"Refused {url!r}: {hostname} is {reason}.", url=url, reason=reason)
    try:
        addresses = _resolve(hostname, port, socket.AF_UNSPEC)
    except (socket.gaierror, UnicodeError):
        return
    _check_addresses(url, hostname, addresses, allowlist)


# The session ----------------------------------------------------------------------------------


class _Refused(requests.RequestException):
    """Carries an UnsafeURL out of the adapter: requests turns a ValueError raised while
    choosing the connection into InvalidURL, which would lose it."""

    def __init__(self, unsafe: UnsafeURL, **kwargs):
        super().__init__(str(unsafe), **kwargs)
        self.unsafe = unsafe


class _GuardedAdapter(HTTPAdapter):
    """Checks every address the host resolves to and connects to the first one, keeping the
    name in the `Host` header and, for https, in SNI and the certificate check."""

    def __init__(self, *, is_https: bool):
        super().__init__()
        self._is_https = is_https

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        hostname, port = host_params["host"], host_params["port"]
        host_params["host"] = self._pinned_address(request, hostname, port)

        request.headers = CaseInsensitiveDict(request.headers or {})
        shown = f"[{hostname}]" if ":" in hostname else hostname
        request.headers["Host"] = f"{shown}:{port}" if port is not None else shown
        if self._is_https:
            pool_kwargs["assert_hostname"] = hostname
            pool_kwargs["server_hostname"] = hostname
        return host_params, pool_kwargs

    def _pinned_address(self, request, hostname: str, port: int | None) -> str:
        url = request.url
        allowlist = _Allowlist.from_settings()
        try:
            _hostname_of(url)
            reason = _name_refusal(hostname.rstrip("."), allowlist)
            if reason:
                raise UnsafeURL(f"Refused {url!r}: {hostname} is {reason}.", url=url, reason=reason)
            try:
                addresses = _resolve(hostname, port, allowed_gai_family())
            except socket.gaierror as error:
                raise requests.ConnectionError(
                    f"Could not resolve {hostname}: {error}", request=request
                ) from error
            if not addresses:
                raise requests.ConnectionError(f"No address for {hostname}", request=request)
            _check_addresses(url, hostname.rstrip("."), addresses, allowlist)
        except UnsafeURL as unsafe:
            raise _Refused(unsafe, request=request) from unsafe
        first = addresses[0]
        return f"[{first}]" if first.version == 6 else str(first)


class OutboundSession(HTTPSession):
    """A requests session for user-given URLs: refused sends raise UnsafeURL (nothing is
    sent); everything else is requests' usual behaviour and exceptions."""

    def send(self, request, **kwargs):
        try:
            return super().send(request, **kwargs)
        except _Refused as refused:
            raise refused.unsafe from None


def outbound_session(*, timeout: float = 15) -> requests.Session:
    """A session whose every send is checked and pinned (see the module docstring), never
    follows redirects, and times out after `timeout` seconds (connect and read each) unless a
    request gives its own. Proxies and .netrc from the environment are ignored: a proxy would
    make the connection for us, a .netrc would add credentials."""
    config = Config(
        ip_filter_enable=False,  # replaced by _GuardedAdapter, mounted below
        ip_filter_allow_loopback_ips=False,
        never_redirect=True,
        default_timeout=(timeout, timeout),
        user_agent_override=None,
    )
    session = OutboundSession(config)
    session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    session.mount("http://", _GuardedAdapter(is_https=False))
    session.mount("https://", _GuardedAdapter(is_https=True))
    return session
