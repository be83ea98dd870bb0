"""The send pipeline (issue 10 §4): claim due messages, render, hand over per provider, retry,
recover, and never send a message twice. docs/messaging/sending.md explains it for users.

- `send_due` / `send_until_idle` (messaging.sending.pipeline): one batch, or until idle;
- `sending_recover` (messaging.sending.recovery): the sweep for messages left `sending`.
"""

from messaging.sending.pipeline import SendReport, send_due, send_until_idle
from messaging.sending.recovery import RecoveryReport, sending_recover, sending_unknown_total

__all__ = [
    "RecoveryReport",
    "SendReport",
    "send_due",
    "send_until_idle",
    "sending_recover",
    "sending_unknown_total",
]
