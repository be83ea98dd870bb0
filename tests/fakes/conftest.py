"""Fixtures that start the provider fakes on 127.0.0.1 and point Masivo's settings at them.

Each server starts once per session (`*_server`); the function-scoped fixtures (`sendgrid_fake`,
`twilio_fake`, `fcm_fake`) reset it (requests, scripts, rules, known keys) and set the base URL
settings that `messaging.channels` reads, so a test sees only its own requests. Other test
packages import these fixtures in their conftest (tests/messaging/conftest.py).
"""

import pytest

from tests.fakes.fcm import FcmFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.twilio import TwilioFake


def _serve(fake_class):
    fake = fake_class().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def sendgrid_server():
    yield from _serve(SendGridFake)


@pytest.fixture(scope="session")
def twilio_server():
    yield from _serve(TwilioFake)


@pytest.fixture(scope="session")
def fcm_server():
    yield from _serve(FcmFake)


@pytest.fixture
def sendgrid_fake(sendgrid_server, settings):
    sendgrid_server.reset()
    settings.MASIVO_SENDGRID_API_URL = sendgrid_server.url
    return sendgrid_server


@pytest.fixture
def twilio_fake(twilio_server, settings):
    twilio_server.reset()
    settings.MASIVO_TWILIO_API_URL = twilio_server.url
    return twilio_server


@pytest.fixture
def fcm_fake(fcm_server, settings):
    fcm_server.reset()
    settings.MASIVO_FCM_API_URL = fcm_server.url
    settings.MASIVO_GOOGLE_TOKEN_URL = fcm_server.token_url
    return fcm_server
