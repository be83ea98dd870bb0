"""Dashboard pages: campaigns (messaging.views.campaigns)."""

from django.urls import path

from messaging.views import campaigns

urlpatterns = [
    path("campaigns/", campaigns.campaign_list, name="campaigns"),
    path("campaigns/new/", campaigns.campaign_new, name="campaign_new"),
    path("campaigns/<int:campaign_id>/", campaigns.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/edit/", campaigns.campaign_edit, name="campaign_edit"),
    path(
        "campaigns/<int:campaign_id>/progress/",
        campaigns.campaign_progress,
        name="campaign_progress",
    ),
    path(
        "campaigns/<int:campaign_id>/<str:action>/",
        campaigns.campaign_action,
        name="campaign_action",
    ),
]
