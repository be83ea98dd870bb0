"""Public routes without sign-in: provider webhooks, open and click tracking (work in progress)."""

urlpatterns: list = []
