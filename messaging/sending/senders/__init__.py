"""One sender per provider, each turning rendered messages into that provider's requests and
its answers into outcomes (messaging.sending.outcomes). In-app needs no provider."""

from messaging.sending.senders.base import Prepared, Sender
from messaging.sending.senders.fcm import FcmSender
from messaging.sending.senders.in_app import InAppSender
from messaging.sending.senders.sendgrid import SendGridSender
from messaging.sending.senders.twilio import TwilioSender

PROVIDER_OF_CHANNEL = {
    "email": "sendgrid",
    "push": "fcm",
    "whatsapp": "twilio",
    "sms": "twilio",
    "in_app": "in_app",
}
SENDERS: dict[str, type[Sender]] = {
    "sendgrid": SendGridSender,
    "fcm": FcmSender,
    "twilio": TwilioSender,
    "in_app": InAppSender,
}
PROVIDER_LABELS = {"sendgrid": "SendGrid", "fcm": "FCM", "twilio": "Twilio", "in_app": "in-app"}

__all__ = ["PROVIDER_LABELS", "PROVIDER_OF_CHANNEL", "SENDERS", "Prepared", "Sender"]
