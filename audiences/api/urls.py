from django.urls import path

from audiences.api import views

urlpatterns = [
    path("audiences", views.AudienceListView.as_view(), name="audience-list"),
    path("audiences/preview", views.AudiencePreviewView.as_view(), name="audience-preview"),
    path("audiences/<int:id>", views.AudienceDetailView.as_view(), name="audience-detail"),
    path(
        "audiences/<int:id>/members", views.AudienceMembersView.as_view(), name="audience-members"
    ),
    path(
        "audiences/<int:id>/changes", views.AudienceChangesView.as_view(), name="audience-changes"
    ),
    path(
        "audiences/<int:id>/recalculate",
        views.AudienceRecalculateView.as_view(),
        name="audience-recalculate",
    ),
    path(
        "audiences/<int:id>/explain", views.AudienceExplainView.as_view(), name="audience-explain"
    ),
    path("audiences/<int:id>/uploads", views.AudienceUploadView.as_view(), name="audience-upload"),
    path("list-uploads/<int:id>", views.ListUploadDetailView.as_view(), name="list-upload"),
    path(
        "list-uploads/<int:id>/problems",
        views.ListUploadProblemsView.as_view(),
        name="list-upload-problems",
    ),
    path(
        "customers/<int:id>/audiences",
        views.CustomerAudiencesView.as_view(),
        name="customer-audiences",
    ),
]
