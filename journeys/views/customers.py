"""What journeys add to a customer's profile page (profiles.views.customers): the journeys
they are in or went through, each with where they are and the steps they took."""

from journeys import selectors
from profiles.models import Customer


def customer_journeys_panel(customer: Customer) -> tuple[str, dict]:
    return "journeys/_customer_journeys.html", {
        "customer_journeys": selectors.customer_journeys(customer)
    }
