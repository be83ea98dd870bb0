"""In-app messages: nothing to call. The rendered message is stored on the row and the app
fetches it, so the hand-over is the write itself and the message is `sent` at once."""

from __future__ import annotations

from messaging.sending.outcomes import Outcome, Sent
from messaging.sending.senders.base import Prepared, Sender


class InAppSender(Sender):
    provider = "in_app"
    needs_connection = False

    def prepare(self, message, rendered) -> Prepared:
        return Prepared(message=message, payload=dict(rendered.fields), request=None)

    def send(self, items: list[Prepared]) -> dict[int, Outcome]:
        return {item.message.id: Sent(detail="stored for the app to fetch") for item in items}
