"""What the audiences app adds to a customer's profile page (profiles.views.customers)."""

from audiences import selectors
from audiences.models import Membership
from profiles.models import Customer


def customer_audiences_panel(customer: Customer) -> tuple[str, dict]:
    """The audiences the customer is in, each with the way they entered and an Explain link."""
    sources = dict(Membership.Source.choices)
    rows = [
        row | {"source_label": sources.get(row["source"], row["source"])}
        for row in selectors.customer_audiences(customer=customer)
    ]
    return "audiences/_customer_audiences.html", {"customer_audiences": rows}
