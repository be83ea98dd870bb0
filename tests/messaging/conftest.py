from tests.dashboard.conftest import _fast_password_hashing  # noqa: F401 (autouse)
from tests.fakes.conftest import (  # noqa: F401 (shared fixtures)
    fcm_fake,
    fcm_server,
    sendgrid_fake,
    sendgrid_server,
    twilio_fake,
    twilio_server,
)
