"""What messaging adds to a customer's profile page (profiles.views.customers): their latest
messages, each with its status and the contact policy's decision."""

from messaging.models import Message
from profiles.models import Customer

SHOWN = 10


def customer_messages_panel(customer: Customer) -> tuple[str, dict]:
    messages = list(
        Message.objects.filter(customer_id=customer.id)
        .select_related("template")
        .order_by("-created_at", "-id")[: SHOWN + 1]
    )
    return "messaging/_customer_messages.html", {
        "customer_messages": messages[:SHOWN],
        "customer_messages_more": len(messages) > SHOWN,
    }
