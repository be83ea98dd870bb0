"""Messaging's models, one module per idea: connections to providers, templates and their
versions, messages (one per recipient per send) with their status history, and the contact
policy with the suppression list."""

from messaging.models.campaigns import Campaign
from messaging.models.connections import ChannelConnection
from messaging.models.messages import (
    Channel,
    Message,
    MessageKind,
    MessageStatus,
    MessageStatusChange,
)
from messaging.models.policy import ContactPolicy, Suppression
from messaging.models.templates import Template, TemplateVersion
from messaging.models.topics import AudienceTopic, TopicSubscription

__all__ = [
    "AudienceTopic",
    "Campaign",
    "Channel",
    "ChannelConnection",
    "ContactPolicy",
    "Message",
    "MessageKind",
    "MessageStatus",
    "MessageStatusChange",
    "Suppression",
    "Template",
    "TemplateVersion",
    "TopicSubscription",
]
