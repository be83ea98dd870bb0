"""The provider fakes of tests/fakes (SendGrid, FCM, Twilio: the real SDKs talk to them) in a
process of their own, so that the sender's CPU and memory are its own.

Prints one JSON line (the URLs, the SendGrid key it knows, an FCM service account it trusts),
then answers commands on stdin, one a line: `counts` prints what was accepted (requests, dedupe
keys, the most times one key was accepted); end of input stops it. Its argument is the
servers' listen backlog (128 by default; the tests' servers keep socketserver's 5). Each fake
keeps only its last 100 recorded requests (the tests keep all of them; a 100,000-message run
would keep ~200 MB).

    .venv/bin/python -m bench.messaging.fakes [backlog]
"""

from __future__ import annotations

import json
import sys
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fakes import base
from tests.fakes.fcm import FcmFake
from tests.fakes.sendgrid import SendGridFake
from tests.fakes.twilio import TwilioFake

SENDGRID_KEY = "SG.bench-key-id.0123456789abcdefBENCH"


def main() -> None:
    # socketserver's listen backlog is 5: a burst of 8 new connections (a hand-over chunk, the
    # SDK opens one per message) overflows it and the dropped SYNs come back after 1 s.
    backlog = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    base._QuietServer.request_queue_size = backlog
    sendgrid, fcm, twilio = SendGridFake().start(), FcmFake().start(), TwilioFake().start()
    for fake in (sendgrid, fcm, twilio):
        fake.requests = deque(maxlen=100)
    sendgrid.add_key(SENDGRID_KEY)
    print(
        json.dumps(
            {
                "sendgrid_url": sendgrid.url, "fcm_url": fcm.url, "token_url": fcm.token_url,
                "twilio_url": twilio.url, "sendgrid_key": SENDGRID_KEY,
                "service_account": fcm.service_account(),
            }
        ),
        flush=True,
    )  # fmt: skip
    for line in sys.stdin:
        if line.strip() == "counts":
            email, push = sendgrid.delivered_keys, fcm.delivered_keys
            print(
                json.dumps(
                    {
                        "email_keys": len(email), "email_max": max(email.values(), default=0),
                        "push_keys": len(push), "push_max": max(push.values(), default=0),
                    }
                ),
                flush=True,
            )  # fmt: skip
    for fake in (sendgrid, fcm, twilio):
        fake.stop()


if __name__ == "__main__":
    main()
