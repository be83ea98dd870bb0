from django.urls import path

from masivo.tenancy.api import views

urlpatterns = [
    path("workspace", views.CurrentWorkspaceView.as_view(), name="workspace"),
    path("api-keys", views.ApiKeyListView.as_view(), name="api-key-list"),
    path("api-keys/<int:id>", views.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("api-keys/<int:id>/revoke", views.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path("members", views.MemberListView.as_view(), name="member-list"),
    path("members/<int:id>", views.MemberDetailView.as_view(), name="member-detail"),
    path("invitations", views.InvitationListView.as_view(), name="invitation-list"),
    path("invitations/<int:id>", views.InvitationDetailView.as_view(), name="invitation-detail"),
    path(
        "invitations/<int:id>/revoke",
        views.InvitationRevokeView.as_view(),
        name="invitation-revoke",
    ),
]
