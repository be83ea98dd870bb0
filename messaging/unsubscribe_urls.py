"""Public routes without sign-in: unsubscribe and preference pages (work in progress)."""

urlpatterns: list = []
