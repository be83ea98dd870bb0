from django.urls import path

from profiles.api import imports, views

urlpatterns = [
    path("customers", views.CustomerListView.as_view(), name="customer-list"),
    path("customers/<int:id>", views.CustomerDetailView.as_view(), name="customer-detail"),
    path("customers/<int:id>/tags", views.CustomerTagsView.as_view(), name="customer-tags"),
    path(
        "customers/<int:id>/consent", views.CustomerConsentView.as_view(), name="customer-consent"
    ),
    path(
        "customers/<int:id>/identify",
        views.CustomerIdentifyView.as_view(),
        name="customer-identify",
    ),
    path("customers/<int:id>/events", views.CustomerEventsView.as_view(), name="customer-events"),
    path(
        "customers/<int:id>/devices", views.CustomerDevicesView.as_view(), name="customer-devices"
    ),
    path("customers/<int:id>/token", views.CustomerTokenView.as_view(), name="customer-token"),
    path("customers/<int:id>/erase", views.CustomerEraseView.as_view(), name="customer-erase"),
    path("customers/<int:id>/export", views.CustomerExportView.as_view(), name="customer-export"),
    path("events", views.EventListView.as_view(), name="event-list"),
    path("customer-imports", imports.CustomerImportListView.as_view(), name="import-list"),
    path(
        "customer-imports/<int:id>",
        imports.CustomerImportDetailView.as_view(),
        name="import-detail",
    ),
    path(
        "customer-imports/<int:id>/errors",
        imports.CustomerImportErrorsView.as_view(),
        name="import-errors",
    ),
    path("profile-settings", views.ProfileSettingsView.as_view(), name="profile-settings"),
]
