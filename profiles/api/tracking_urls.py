from django.urls import path

from profiles.api.tracking import tracking_view

urlpatterns = [
    path(kind, tracking_view(kind), name=f"tracking-{kind}")
    for kind in ("identify", "track", "page", "screen", "group", "alias")
] + [
    path("batch", tracking_view(None), name="tracking-batch"),
    path("import", tracking_view(None), name="tracking-import"),
]
