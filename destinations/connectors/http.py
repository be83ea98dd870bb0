"""What the plain-HTTP connectors share: base URLs a user may give (an API root override, an
S3-compatible endpoint), checked the same way everywhere."""

from urllib.parse import urlsplit

from rest_framework import serializers

from masivo.outbound import UnsafeURL, is_allowlisted, url_check


def checked_base_url(value: str, default: str) -> str:
    """A base URL a user gave: the default as is, anything else through the SSRF guard, and
    https unless the outbound allow-list names the host (the token or secret goes with every
    request)."""
    value = value.strip().rstrip("/")
    if value == default:
        return value
    try:
        url_check(value)
    except UnsafeURL as error:
        raise serializers.ValidationError(str(error)) from error
    parts = urlsplit(value)
    if parts.scheme.lower() != "https" and not is_allowlisted(parts.hostname or ""):
        raise serializers.ValidationError("must be an https URL (credentials go with it)")
    return value
