from django.db.models import QuerySet

from messaging.models import ChannelConnection


def connections_list() -> QuerySet[ChannelConnection]:
    """The workspace-in-context's connections. `credentials` is deferred: lists never need it,
    so they never decrypt."""
    return ChannelConnection.objects.defer("credentials").order_by("-id")


def connection_for_provider(provider: str) -> ChannelConnection | None:
    return ChannelConnection.objects.filter(provider=provider).first()
