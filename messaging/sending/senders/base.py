"""What every sender provides to the pipeline (messaging.sending.pipeline)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from messaging.sending.config import int_setting
from messaging.sending.outcomes import Failed, Outcome


@dataclass
class Prepared:
    """One message ready to hand over: `payload` is kept on the message (the message log),
    `request` is what the sender calls the provider with."""

    message: Any  # messaging.models.Message, with customer loaded
    payload: dict
    request: Any


class Sender:
    """Built once per (workspace, provider) group of a claimed batch, with the workspace's
    connection (None for in-app). `prepare` runs in the pipeline's thread and may read the
    database; `send` makes the provider calls (no database access from its threads) and
    answers an outcome for every message it was given."""

    provider = ""
    needs_connection = True

    def __init__(self, *, connection, workspace, now: datetime):
        self.connection = connection
        self.workspace = workspace
        self.now = now
        self._pool: ThreadPoolExecutor | None = None

    def load(self, messages: list) -> None:
        """Read what `prepare` needs for all these messages at once (devices, settings)."""

    def prepare(self, message, rendered) -> Prepared | Failed:
        raise NotImplementedError

    def send(self, items: list[Prepared]) -> dict[int, Outcome]:
        raise NotImplementedError

    def after_send(self) -> None:
        """Database effects of the answers (a device FCM no longer knows), in the pipeline's
        thread, after the outcomes are recorded."""

    @property
    def pool(self) -> ThreadPoolExecutor:
        """Bounded concurrency for one-request-a-message providers."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=int_setting("MASIVO_SEND_CONCURRENCY"),
                thread_name_prefix=f"send-{self.provider}",
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
