from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from masivo import health
from masivo.tenancy.api import views as tenancy_api

api_v1 = [
    path("", tenancy_api.ApiRootView.as_view(), name="root"),
    path("", include("masivo.tenancy.api.urls")),
    path("", include("profiles.api.urls")),
    path("", include("audiences.api.urls")),
    path("", include("messaging.api.urls")),
    path("", include("destinations.api.urls")),
    path("", include("journeys.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("v1/", include("profiles.api.tracking_urls")),
    path("m/", include("messaging.public_urls")),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include("masivo.dashboard.auth_urls")),
    path("", include("masivo.dashboard.urls")),
]

handler404 = "masivo.ui.errors.not_found"
handler500 = "masivo.ui.errors.server_error"
handler400 = "masivo.ui.errors.bad_request"
handler403 = "masivo.ui.errors.permission_denied"
