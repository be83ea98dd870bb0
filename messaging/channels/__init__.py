"""The providers a workspace connects, one module per channel (in-app is built in and has none)."""

from messaging.channels.base import Provider
from messaging.channels.email import PROVIDER as SENDGRID
from messaging.channels.push import PROVIDER as FCM
from messaging.channels.whatsapp import PROVIDER as TWILIO

PROVIDERS: dict[str, Provider] = {provider.name: provider for provider in (SENDGRID, TWILIO, FCM)}
