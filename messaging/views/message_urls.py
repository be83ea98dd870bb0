"""Dashboard pages (work in progress)."""

urlpatterns: list = []
