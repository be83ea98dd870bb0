"""API routes (work in progress)."""

urlpatterns: list = []
